//! Checking the YAML tree against the strategies schema.
//!
//! Every check records its issue and carries on, so one run over the file finds
//! everything that is wrong with it. Values that fail a check are left at their
//! defaults so the rest of the row can still be checked; nothing built from a
//! file with issues is ever returned, so those stand-ins never escape.

use std::collections::HashMap;

use crate::yaml::{self, child, line, pos, value, Issue, Mapping, Node, Pos, Reader, Value};
use crate::{ModelRef, ModelsSource, StrategyRow, TOP_FIELDS};
use quiver_core::InstrumentToken;
use quiver_strategy::hybrid::{self, Policy};
use quiver_strategy::ml::{self, MlFeature};
use quiver_strategy::params::{ParamDef, ParamValue, ParamValues, RawParam, VALIDATOR_PARAMS};
use quiver_strategy::rules;
use quiver_strategy::{
    DepthSource, Footprint, MlSpec, RulesType, StandardValidator, StrategyKind, StrategySpec,
    StrategyType,
};

/// Fields of a row, in the order the "expected ..." hint lists them.
const ROW_FIELDS: [&str; 10] = [
    "id",
    "strategy_type",
    "parameters",
    "brokers",
    "instruments",
    "enabled",
    "validator",
    "validators",
    "priority",
    "budget_us_per_tick",
];
/// Fields of a hybrid's `rules` / `ml` part.
const PART_FIELDS: [&str; 2] = ["strategy_type", "parameters"];
/// The parts a hybrid's `parameters` must hold besides its own parameters.
const HYBRID_PARTS: &[&str] = &["rules", "ml"];
/// What an `ml` strategy's `parameters` hold besides its own parameters.
const ML_PARTS: &[&str] = &["model", "features"];
/// `ml_momentum` and `hybrid_momentum` fix their features.
const PRESET_PARTS: &[&str] = &["model"];
const VALIDATORS: &[&str] = &["standard"];

fn raw<'n>(node: &'n Node<'_>) -> RawParam<'n> {
    match value(node) {
        Value::Int(v) => RawParam::Int(v),
        Value::Float(v) => RawParam::Float(v),
        Value::Bool(v) => RawParam::Bool(v),
        Value::Str(v) => RawParam::Text(v),
        Value::Null => RawParam::Other("null"),
        Value::List(_) => RawParam::Other("a list"),
        Value::Map(_) => RawParam::Other("a mapping"),
        Value::Other(what) => RawParam::Other(what),
    }
}

/// A `parameters` mapping after its declared parameters were checked.
struct Params<'n, 'y> {
    values: ParamValues,
    /// Each declared parameter the file sets: where its value is and whether
    /// it passed, so cross-field checks neither run on stand-in defaults nor
    /// lose their position.
    given: Vec<(&'static str, Pos, bool)>,
    /// The hybrid parts found among the keys.
    parts: Vec<(&'static str, &'n Node<'y>)>,
    /// Where the mapping starts, when there is one.
    at: Option<Pos>,
}

impl Params<'_, '_> {
    fn given(&self, name: &str) -> Option<(Pos, bool)> {
        self.given
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|&(_, at, ok)| (at, ok))
    }

    fn part(&self, name: &str) -> Option<&Node<'_>> {
        self.parts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, node)| *node)
    }
}

/// What a checked row keeps of every instrument it follows, and which value
/// of the file to name if that is too much.
struct RowHistory {
    footprint: Footprint,
    /// Where the value that sets the row's depth is written — or, when that
    /// is a default, the row's instrument list — and its path.
    blame: (Pos, String),
}

/// Walks the document, collecting issues.
pub(crate) struct Checker {
    yaml: Reader,
    /// Models named by the row being checked.
    model_refs: Vec<ModelRef>,
    /// Where the row being checked writes each parameter and feature, by path.
    written: HashMap<String, Pos>,
    /// The history of each row returned, in order.
    histories: Vec<RowHistory>,
    /// Where the `models:` section points.
    pub(crate) models: Option<ModelsSource>,
    /// `history_budget_mib`.
    pub(crate) budget_mib: u64,
    /// `lifecycle:`.
    pub(crate) lifecycle: crate::Lifecycle,
    /// `paper:`, `risk:` and `costs:`.
    pub(crate) desk: quiver_paper::DeskSpec,
}

impl Checker {
    pub(crate) fn new(yaml: Reader) -> Self {
        Checker {
            yaml,
            model_refs: Vec::new(),
            written: HashMap::new(),
            histories: Vec::new(),
            models: None,
            budget_mib: crate::DEFAULT_HISTORY_BUDGET_MIB,
            lifecycle: crate::Lifecycle::default(),
            desk: quiver_paper::DeskSpec::default(),
        }
    }

    /// The issues in document order. Checks run field by field (a row's
    /// `parameters` need its `strategy_type`, wherever that is written), so the
    /// reader's sorting by position is what puts them in order.
    pub(crate) fn finish(self) -> Vec<Issue> {
        self.yaml.finish()
    }

    /// Checks the whole document; the rows are meaningful only if no issue
    /// was recorded.
    pub(crate) fn document(&mut self, docs: &[Node<'_>]) -> Vec<StrategyRow> {
        let Some(root) = self.yaml.single_document(docs) else {
            self.yaml.required(None, "strategies", "", Pos::START);
            return Vec::new();
        };
        let Some(map) = self.yaml.mapping(root, "") else {
            return Vec::new();
        };
        let [strategies, models, budget, lifecycle, paper, risk, costs] =
            self.yaml.fields(map, "", &TOP_FIELDS);
        if let Some(node) = risk {
            if let Some(read) = crate::desk::risk(&mut self.yaml, node, TOP_FIELDS[5]) {
                self.desk.risk = read;
            }
        }
        if let Some(node) = costs {
            if let Some(read) = crate::desk::costs(&mut self.yaml, node, TOP_FIELDS[6]) {
                self.desk.costs = read;
            }
        }
        if let Some(node) = lifecycle {
            if let Some(read) = crate::hygiene::lifecycle(&mut self.yaml, node, TOP_FIELDS[3]) {
                self.lifecycle = read;
            }
        }
        if let Some(models) = models {
            self.models_section(models);
        }
        let mut budget_ok = true;
        if let Some(node) = budget {
            let limit = i64::try_from(crate::MAX_HISTORY_BUDGET_MIB).unwrap_or(i64::MAX);
            match self.yaml.int_in(node, TOP_FIELDS[2], 1, limit) {
                Some(mib) => self.budget_mib = u64::try_from(mib).unwrap_or(1),
                None => budget_ok = false,
            }
        }
        let Some(list) = self.yaml.required(strategies, "strategies", "", pos(root)) else {
            return Vec::new();
        };
        let Some(items) = self.yaml.sequence(list, "strategies") else {
            return Vec::new();
        };
        let mut ids = HashMap::new();
        let rows: Vec<StrategyRow> = items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| self.row(index, item, &mut ids))
            .collect();
        // A budget that was itself refused leaves nothing to compare with.
        if budget_ok {
            self.history_budget(&rows);
        }
        if let Some(node) = paper {
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            if let Some(read) = crate::desk::paper(&mut self.yaml, node, TOP_FIELDS[4], &ids) {
                self.desk.paper = read;
            }
        }
        rows
    }

    /// Refuses a file whose history rings and feature states, summed over
    /// every instrument, would take more than `history_budget_mib`: it is
    /// computed from the descriptions, before anything is allocated, and
    /// names the value that drives the largest share. Disabled rows count,
    /// as they are checked like the others: enabling one later must not
    /// turn an accepted file into one that cannot run.
    fn history_budget(&mut self, rows: &[StrategyRow]) {
        let budget = self.budget_mib.saturating_mul(1 << 20);
        let histories = std::mem::take(&mut self.histories);
        let total = history_bytes(
            rows.iter()
                .zip(&histories)
                .map(|(row, h)| (&h.footprint, row.instruments.as_slice())),
            0,
        );
        if total <= budget {
            return;
        }
        // The row that alone takes the most, the first of equals.
        let mut worst: Option<(u64, usize)> = None;
        for (i, (row, h)) in rows.iter().zip(&histories).enumerate() {
            let alone = history_bytes(
                std::iter::once((&h.footprint, row.instruments.as_slice())),
                0,
            );
            if worst.is_none_or(|(most, _)| alone > most) {
                worst = Some((alone, i));
            }
        }
        let Some((alone, i)) = worst else { return };
        let (row, h) = (&rows[i], &histories[i]);
        let (at, path) = &h.blame;
        self.yaml.issue(
            *at,
            path,
            format!(
                "the history would take {} for the whole file, over the budget of {} MiB (history_budget_mib); this strategy keeps {} ticks on each of its {} instruments ({})",
                show_bytes(total),
                self.budget_mib,
                h.footprint.ring_depth(),
                row.instruments.len(),
                show_bytes(alone),
            ),
        );
    }

    /// `models:` is either the path of a registry file (relative to this
    /// file) or the registry's list itself, checked by the registry parser.
    fn models_section(&mut self, node: &Node<'_>) {
        let line = line(node);
        self.models = match value(node) {
            Value::Str("") => {
                self.yaml.issue(pos(node), "models", yaml::EMPTY_MESSAGE);
                None
            }
            Value::Str(path) => Some(ModelsSource::File {
                path: path.to_owned(),
                line,
            }),
            Value::List(_) | Value::Null => Some(ModelsSource::Inline { line }),
            _ => {
                self.yaml
                    .expected(node, "models", "a registry file path or a list of models");
                None
            }
        };
    }

    /// One row; `None` only after recording why.
    fn row(
        &mut self,
        index: usize,
        node: &Node<'_>,
        ids: &mut HashMap<String, (usize, usize)>,
    ) -> Option<StrategyRow> {
        let base = yaml::item("strategies", index);
        let map = self.yaml.mapping(node, &base)?;
        let row_at = pos(node);
        let label = match readable_id(map) {
            Some(id) => format!("{base} (id {id:?})"),
            None => base,
        };

        let [id, strategy_type, parameters, brokers, instruments, enabled, validator, validators, priority, budget] =
            self.yaml.fields(map, &label, &ROW_FIELDS);

        let id = self
            .yaml
            .required(id, "id", &label, row_at)
            .and_then(|node| self.id(node, &child(&label, "id"), index, ids));

        let ty = self
            .yaml
            .required(strategy_type, "strategy_type", &label, row_at)
            .and_then(|node| self.strategy_type(node, &child(&label, "strategy_type")));
        let params_path = child(&label, "parameters");
        let mut validator_values = ParamValues::defaults(VALIDATOR_PARAMS);
        self.model_refs.clear();
        self.written.clear();
        let spec = match ty {
            Some(ty) => self.spec(
                ty,
                parameters,
                &params_path,
                row_at,
                Some(&mut validator_values),
            ),
            None => {
                self.unchecked_params(parameters, &params_path);
                None
            }
        };

        let brokers = self
            .yaml
            .required(brokers, "brokers", &label, row_at)
            .and_then(|node| self.brokers(node, &child(&label, "brokers")));
        let instruments_node = instruments;
        let instruments = self
            .yaml
            .required(instruments, "instruments", &label, row_at)
            .and_then(|node| self.instruments(node, &child(&label, "instruments")));
        let enabled = match enabled {
            None => Some(true),
            Some(node) => self.yaml.bool(node, &child(&label, "enabled")),
        };
        let known_validator = match validator {
            None => true,
            Some(node) => self.validator(node, &child(&label, "validator")),
        };

        let guards = match validators {
            None => Some(quiver_strategy::GuardSpec::default()),
            Some(node) => {
                crate::hygiene::validators(&mut self.yaml, node, &child(&label, "validators"))
            }
        };
        let priority = match priority {
            None => Some(quiver_strategy::Priority::default()),
            Some(node) => {
                crate::hygiene::priority(&mut self.yaml, node, &child(&label, "priority"))
            }
        };
        let budget_ns = match budget {
            None => Some(None),
            Some(node) => crate::hygiene::budget_ns(
                &mut self.yaml,
                node,
                &child(&label, "budget_us_per_tick"),
            )
            .map(Some),
        };

        let (Some(id), Some(spec), Some(brokers), Some(instruments), Some(enabled), true) =
            (id, spec, brokers, instruments, enabled, known_validator)
        else {
            return None;
        };
        let instruments_at = (
            instruments_node.map_or(row_at, pos),
            child(&label, "instruments"),
        );
        let history = self.row_history(&spec, ty, &params_path, instruments_at);
        self.histories.push(history);
        let (Some(guards), Some(priority), Some(budget_ns)) = (guards, priority, budget_ns) else {
            return None;
        };
        Some(StrategyRow {
            id,
            spec,
            brokers,
            instruments,
            enabled,
            validator: StandardValidator {
                min_confidence: validator_values.float(&quiver_strategy::params::MIN_CONFIDENCE),
                max_quantity: validator_values.quantity(&quiver_strategy::params::MAX_QUANTITY),
            },
            guards,
            schedule: quiver_strategy::Schedule {
                priority,
                budget_ns,
            },
            line: row_at.line,
            models: std::mem::take(&mut self.model_refs),
        })
    }

    /// The history a checked row keeps, and what to name if it is too
    /// much: the written value that sets its depth, else its instruments.
    fn row_history(
        &self,
        spec: &StrategySpec,
        ty: Option<StrategyType>,
        params_path: &str,
        instruments: (Pos, String),
    ) -> RowHistory {
        let deepest = spec.depth_sources().into_iter().fold(
            None,
            |best: Option<(DepthSource, usize)>, (source, depth)| match best {
                Some((_, most)) if most >= depth => best,
                _ => Some((source, depth)),
            },
        );
        let flat = ty == Some(StrategyType::HybridMomentum);
        let blame = deepest
            .map(|(source, _)| depth_path(source, params_path, flat))
            .and_then(|path| Some((*self.written.get(&path)?, path)))
            .unwrap_or(instruments);
        RowHistory {
            footprint: spec.footprint(),
            blame,
        }
    }

    fn id(
        &mut self,
        node: &Node<'_>,
        path: &str,
        index: usize,
        ids: &mut HashMap<String, (usize, usize)>,
    ) -> Option<String> {
        let id = self.yaml.non_empty_string(node, path)?;
        if let Some(problem) = name_problem(id, &[]) {
            self.yaml.issue(pos(node), path, problem);
            return None;
        }
        if let Some(&(first_index, first_line)) = ids.get(id) {
            self.yaml.issue(
                pos(node),
                path,
                format!("duplicate id {id:?} (first used by strategies[{first_index}] at line {first_line})"),
            );
            return None;
        }
        ids.insert(id.to_owned(), (index, line(node)));
        Some(id.to_owned())
    }

    fn strategy_type(&mut self, node: &Node<'_>, path: &str) -> Option<StrategyType> {
        let names = StrategyType::ALL.map(StrategyType::name);
        let name = self.yaml.one_of(node, path, "strategy_type", &names)?;
        StrategyType::from_name(name)
    }

    /// The spec of a strategy of type `ty` from its `parameters` (at `path`;
    /// `owner` locates a missing hybrid part when `parameters` itself is
    /// absent). `validator` receives the validator's parameters where the
    /// position allows them (top-level rows only).
    fn spec(
        &mut self,
        ty: StrategyType,
        parameters: Option<&Node<'_>>,
        path: &str,
        owner: Pos,
        validator: Option<&mut ParamValues>,
    ) -> Option<StrategySpec> {
        if let Some(rules_ty) = ty.rules() {
            let params = self.params(parameters, path, ty.params(), &[], validator);
            if rules_ty == RulesType::Rsi {
                self.check_rsi_levels(&params, path);
            }
            return Some(StrategySpec::Rules(rules_ty, params.values));
        }
        match ty {
            StrategyType::Ml | StrategyType::MlMomentum => {
                let parts = if ty.takes_feature_list() {
                    ML_PARTS
                } else {
                    PRESET_PARTS
                };
                let params = self.params(parameters, path, ty.params(), parts, validator);
                // Both checked before either can end the row, so one run
                // reports every mistake.
                let features = if ty.takes_feature_list() {
                    let at = params.at.unwrap_or(owner);
                    self.yaml
                        .required(params.part("features"), "features", path, at)
                        .and_then(|node| self.feature_list(node, &child(path, "features")))
                } else {
                    Some(Vec::new())
                };
                let model = self.model_name(&params, ty, path, owner);
                let (model, features) = (model?, features?);
                let spec = if ty.takes_feature_list() {
                    MlSpec {
                        name: "ml",
                        model,
                        features,
                        params: params.values,
                    }
                } else {
                    MlSpec::ml_momentum(&model, params.values)
                };
                Some(StrategySpec::Ml(spec))
            }
            StrategyType::HybridMomentum => {
                let params = self.params(parameters, path, ty.params(), PRESET_PARTS, validator);
                let model = self.model_name(&params, ty, path, owner)?;
                let subset = |defs: &'static [ParamDef]| {
                    let mut values = ParamValues::defaults(defs);
                    for def in defs {
                        if let Some(v) = params.values.get(def.name) {
                            values.set(def.name, v);
                        }
                    }
                    values
                };
                Some(StrategySpec::Hybrid {
                    rules: Box::new(StrategySpec::Rules(
                        RulesType::Momentum,
                        subset(rules::momentum::PARAMS),
                    )),
                    ml: Box::new(StrategySpec::Ml(MlSpec::ml_momentum(
                        &model,
                        subset(ml::PARAMS),
                    ))),
                    policy: Policy::majority_vote(
                        params.values.float(&quiver_strategy::hybrid::MIN_CONF),
                    ),
                })
            }
            _ => {
                let params = self.params(parameters, path, hybrid::PARAMS, HYBRID_PARTS, validator);
                let at = params.at.unwrap_or(owner);
                let mut part = |name: &str| {
                    self.yaml
                        .required(params.part(name), name, path, at)
                        .and_then(|node| self.part(node, &child(path, name)))
                };
                let (rules, ml) = (part("rules"), part("ml"));
                // The model path carries only the rules part's decision.
                let rules_ty = rules.as_ref().map(StrategySpec::strategy_type);
                if let Some(ty) = rules_ty.filter(|ty| ty.kind() != StrategyKind::Rules) {
                    let at = params.part("rules").map_or(owner, pos);
                    self.yaml.issue(
                        at,
                        &child(path, "rules"),
                        format!("must be a rules strategy, got {}", ty.name()),
                    );
                    return None;
                }
                let (rules, ml) = (rules?, ml?);
                Some(StrategySpec::Hybrid {
                    rules: Box::new(rules),
                    ml: Box::new(ml),
                    policy: Policy::from_params(&params.values),
                })
            }
        }
    }

    /// The registry model of an ML strategy: `parameters.model`, required
    /// for `ml`, [`ml::ML_MOMENTUM_DEFAULT_MODEL`] for the presets.
    fn model_name(
        &mut self,
        params: &Params<'_, '_>,
        ty: StrategyType,
        path: &str,
        owner: Pos,
    ) -> Option<String> {
        let model_path = child(path, "model");
        let (name, at) = match params.part("model") {
            Some(node) => (
                self.yaml.non_empty_string(node, &model_path)?.to_owned(),
                pos(node),
            ),
            None if ty.model_param() == Some(true) => {
                self.yaml
                    .required(None, "model", path, params.at.unwrap_or(owner));
                return None;
            }
            None => (
                ml::ML_MOMENTUM_DEFAULT_MODEL.to_owned(),
                params.at.unwrap_or(owner),
            ),
        };
        self.model_refs.push(ModelRef {
            name: name.clone(),
            line: at.line,
            path: model_path,
        });
        Some(name)
    }

    /// An `ml` strategy's input columns: store specs or derived features.
    fn feature_list(&mut self, node: &Node<'_>, path: &str) -> Option<Vec<MlFeature>> {
        let items = self.yaml.non_empty_sequence(node, path)?;
        let mut features = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = yaml::item(path, i);
            let Some(text) = self.yaml.string(item, &item_path) else {
                ok = false;
                continue;
            };
            match MlFeature::parse(text) {
                Ok(feature) => {
                    self.written.insert(item_path, pos(item));
                    features.push(feature);
                }
                Err(message) => {
                    self.yaml.issue(pos(item), &item_path, message);
                    ok = false;
                }
            }
        }
        ok.then_some(features)
    }

    /// A hybrid's `rules` or `ml` part.
    fn part(&mut self, node: &Node<'_>, path: &str) -> Option<StrategySpec> {
        let map = self.yaml.mapping(node, path)?;
        let [strategy_type, parameters] = self.yaml.fields(map, path, &PART_FIELDS);
        let params_path = child(path, "parameters");
        let type_path = child(path, "strategy_type");
        let ty = self
            .yaml
            .required(strategy_type, "strategy_type", path, pos(node))
            .and_then(|ty_node| Some((self.strategy_type(ty_node, &type_path)?, ty_node)));
        match ty {
            Some((StrategyType::Hybrid | StrategyType::HybridMomentum, ty_node)) => {
                self.yaml.issue(
                    pos(ty_node),
                    &type_path,
                    "nested hybrids are not supported".to_owned(),
                );
                self.unchecked_params(parameters, &params_path);
                None
            }
            Some((ty, _)) => self.spec(ty, parameters, &params_path, pos(node), None),
            None => {
                self.unchecked_params(parameters, &params_path);
                None
            }
        }
    }

    /// Checks a `parameters` mapping against `defs`, then `validator`'s
    /// declarations if given; names in `parts` are collected for the caller.
    /// Absent or null `parameters` means all defaults: an empty `parameters:`
    /// line is what commenting out every parameter leaves behind.
    fn params<'n, 'y>(
        &mut self,
        node: Option<&'n Node<'y>>,
        path: &str,
        defs: &'static [ParamDef],
        parts: &'static [&'static str],
        mut validator: Option<&mut ParamValues>,
    ) -> Params<'n, 'y> {
        let mut params = Params {
            values: ParamValues::defaults(defs),
            given: Vec::new(),
            parts: Vec::new(),
            at: None,
        };
        let Some(node) = node else {
            return params;
        };
        let map = match value(node) {
            Value::Null => return params,
            Value::Map(map) => map,
            _ => {
                self.yaml.expected(node, path, "a mapping");
                return params;
            }
        };
        params.at = Some(pos(node));
        for entry in self.yaml.entries(map, path) {
            let entry_path = child(path, entry.name);
            if let Some(def) = defs.iter().find(|d| d.name == entry.name) {
                self.written.insert(entry_path.clone(), pos(entry.value));
                let checked = self.param(def, entry.value, &entry_path);
                if let Some(v) = checked {
                    params.values.set(def.name, v);
                }
                params
                    .given
                    .push((def.name, pos(entry.value), checked.is_some()));
            } else if let Some(part) = parts.iter().find(|p| **p == entry.name) {
                params.parts.push((part, entry.value));
            } else if let Some((def, values)) = validator.as_deref_mut().and_then(|values| {
                VALIDATOR_PARAMS
                    .iter()
                    .find(|d| d.name == entry.name)
                    .map(|def| (def, values))
            }) {
                if let Some(v) = self.param(def, entry.value, &entry_path) {
                    values.set(def.name, v);
                }
            } else {
                let mut expected: Vec<&str> = defs.iter().map(|d| d.name).collect();
                expected.extend(parts);
                if validator.is_some() {
                    expected.extend(VALIDATOR_PARAMS.iter().map(|d| d.name));
                }
                self.yaml.unknown(&entry, path, "parameter", &expected);
            }
        }
        params
    }

    fn param(&mut self, def: &ParamDef, node: &Node<'_>, path: &str) -> Option<ParamValue> {
        match def.check(&raw(node)) {
            Ok(v) => Some(v),
            Err(message) => {
                self.yaml.issue(pos(node), path, message);
                None
            }
        }
    }

    /// `parameters` of a row whose type is unknown: names cannot be checked,
    /// but the shape and the keys can.
    fn unchecked_params(&mut self, node: Option<&Node<'_>>, path: &str) {
        let Some(node) = node else { return };
        match value(node) {
            Value::Null => {}
            Value::Map(map) => {
                self.yaml.entries(map, path);
            }
            _ => self.yaml.expected(node, path, "a mapping"),
        }
    }

    /// RSI's bands must not cross, or one price could both buy and sell. Only
    /// checked when both levels are valid on their own: a rejected level is
    /// already reported and its stand-in default would mislead.
    fn check_rsi_levels(&mut self, params: &Params<'_, '_>, path: &str) {
        let (overbought, oversold) = (params.given("overbought"), params.given("oversold"));
        if matches!(overbought, Some((_, false))) || matches!(oversold, Some((_, false))) {
            return;
        }
        let (high, low) = (
            params
                .values
                .float(&quiver_strategy::rules::rsi::OVERBOUGHT),
            params.values.float(&quiver_strategy::rules::rsi::OVERSOLD),
        );
        if high > low {
            return;
        }
        let at = overbought
            .or(oversold)
            .map(|(at, _)| at)
            .or(params.at)
            .unwrap_or(Pos::START);
        self.yaml.issue(
            at,
            &child(path, "overbought"),
            format!("must be greater than oversold ({low}), got {high}"),
        );
    }

    fn brokers(&mut self, node: &Node<'_>, path: &str) -> Option<Vec<String>> {
        let items = self.yaml.non_empty_sequence(node, path)?;
        let mut brokers: Vec<String> = Vec::with_capacity(items.len());
        let mut first_at: HashMap<&str, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = yaml::item(path, i);
            let Some(name) = self.yaml.non_empty_string(item, &item_path) else {
                continue;
            };
            if let Some(problem) = name_problem(name, RESERVED_BROKERS) {
                self.yaml.issue(pos(item), &item_path, problem);
                continue;
            }
            if let Some(first) = first_at.get(name) {
                self.yaml.issue(
                    pos(item),
                    &item_path,
                    format!("duplicate broker {name:?} (also at brokers[{first}])"),
                );
            } else {
                first_at.insert(name, i);
                brokers.push(name.to_owned());
            }
        }
        Some(brokers)
    }

    fn instruments(&mut self, node: &Node<'_>, path: &str) -> Option<Vec<InstrumentToken>> {
        let items = self.yaml.non_empty_sequence(node, path)?;
        let mut tokens: Vec<InstrumentToken> = Vec::with_capacity(items.len());
        let mut first_at: HashMap<InstrumentToken, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = yaml::item(path, i);
            let Some(v) = self.yaml.int(item, &item_path) else {
                continue;
            };
            let token = match InstrumentToken::try_from(v) {
                Ok(token) if token > 0 => token,
                _ => {
                    self.yaml
                        .issue(pos(item), &item_path, format!("must be > 0, got {v}"));
                    continue;
                }
            };
            if let Some(first) = first_at.get(&token) {
                self.yaml.issue(
                    pos(item),
                    &item_path,
                    format!("duplicate instrument {token} (also at instruments[{first}])"),
                );
            } else {
                first_at.insert(token, i);
                tokens.push(token);
            }
        }
        Some(tokens)
    }

    /// Whether `node` names a known validator.
    fn validator(&mut self, node: &Node<'_>, path: &str) -> bool {
        self.yaml
            .one_of(node, path, "validator", VALIDATORS)
            .is_some()
    }
}

/// Where `source` is written in a row whose parameters are at `params_path`;
/// `flat`: the row is a `hybrid_momentum`, whose parts' parameters are the
/// row's own.
fn depth_path(source: DepthSource, params_path: &str, flat: bool) -> String {
    let part_path = |part: Option<&str>| match part {
        Some(part) if !flat => child(&child(params_path, part), "parameters"),
        _ => params_path.to_owned(),
    };
    match source {
        DepthSource::Param { part, name } => child(&part_path(part), name),
        DepthSource::Feature { part, index } => {
            yaml::item(&child(&part_path(part), "features"), index)
        }
    }
}

/// Heap bytes of the history rings and feature states of `rows` (each a
/// footprint and the instruments it follows): one ring per instrument, as
/// deep as its deepest follower and at least `floor` ticks, and one state
/// per distinct feature on it — what the engine will allocate. Sorting
/// (instrument, row) pairs rather than keeping a set per instrument keeps
/// this at 16 bytes per pair however many instruments a file lists.
pub(crate) fn history_bytes<'a>(
    rows: impl Iterator<Item = (&'a Footprint, &'a [InstrumentToken])>,
    floor: usize,
) -> u64 {
    let rows: Vec<(&Footprint, &[InstrumentToken])> = rows.collect();
    let depths: Vec<usize> = rows.iter().map(|(f, _)| f.ring_depth()).collect();
    let mut pairs: Vec<(InstrumentToken, usize)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, (_, tokens))| tokens.iter().map(move |t| (*t, i)))
        .collect();
    pairs.sort_unstable();
    let mut features: Vec<quiver_strategy::FeatureSpec> = Vec::new();
    let mut total: u64 = 0;
    for followers in pairs.chunk_by(|a, b| a.0 == b.0) {
        let depth = followers
            .iter()
            .map(|&(_, i)| depths[i])
            .fold(floor, usize::max);
        features.clear();
        for &(_, i) in followers {
            features.extend(rows[i].0.features.iter().copied());
        }
        features.sort_unstable();
        features.dedup();
        let ring = quiver_core::HistoryRing::bytes_for(depth) as u64;
        total = features
            .iter()
            .map(|f| f.state_bytes() as u64)
            .fold(total.saturating_add(ring), u64::saturating_add);
    }
    total
}

/// `bytes` for a message: `1.8 GiB`, `12.0 MiB`, `340 KiB`.
pub(crate) fn show_bytes(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    let b = bytes as f64;
    if b >= 1024.0 * MIB {
        format!("{:.1} GiB", b / (1024.0 * MIB))
    } else if b >= MIB {
        format!("{:.1} MiB", b / MIB)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

/// The row's `id` if it is a usable label for the row's paths.
fn readable_id<'n>(map: &'n Mapping<'_>) -> Option<&'n str> {
    map.iter()
        .find_map(|(key, val)| match (value(key), value(val)) {
            (Value::Str("id"), Value::Str(id)) if !id.is_empty() => Some(id),
            _ => None,
        })
}

/// The longest strategy id or broker name.
pub const NAME_MAX: usize = 64;

/// Broker names that would publish into the service's own streams: broker
/// `dlq` is `signals.dlq`, the dead-letter stream.
pub const RESERVED_BROKERS: &[&str] = &["dlq"];

/// Why `name` cannot be a strategy id or broker name, if it cannot. Both
/// become stream names, metric labels and log fields, so they are kept to
/// 1–[`NAME_MAX`] ASCII letters, digits, `-`, `_` and `.`, starting with a
/// letter or digit.
fn name_problem(name: &str, reserved: &[&str]) -> Option<String> {
    let shown = quiver_strategy::params::quote_truncated(name);
    let valid = name.len() <= NAME_MAX
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Some(format!(
            "{shown} is not a valid name: use 1 to {NAME_MAX} ASCII letters, digits, '-', '_' or '.', starting with a letter or digit"
        ));
    }
    reserved
        .contains(&name)
        .then(|| format!("{shown} is reserved (broker dlq would publish into the dead-letter stream signals.dlq)"))
}
