//! `quiver models list|verify|info`: what the model registry holds, whether
//! each file matches its checksum, and whether each model loads and runs on
//! this machine's backend.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use quiver_infer::{
    sha256_hex, BackendChoice, Loader, ModelGraph, ModelSpec, OutputSpec, Predictor, Registry,
};

use crate::edge::{invalid, Outcome, EXIT_INVALID_INPUT};
use crate::pipeline::{BackendArg, DEFAULT_DEADLINE_MS, MAX_DEADLINE_MS};

#[derive(Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    action: ModelsAction,
    /// Model registry file (YAML).
    #[arg(long, global = true, default_value = "models/registry.yaml")]
    registry: PathBuf,
    /// Inference backend.
    #[arg(long, global = true, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    /// libonnxruntime.so to load (default: $ORT_DYLIB_PATH; scripts/fetch_onnxruntime.sh fetches it).
    #[arg(long, global = true)]
    ort_dylib: Option<PathBuf>,
    /// Deadline of each model call, in milliseconds, for models whose registry entry sets no
    /// deadline_ms; a model over it fails verification.
    #[arg(long, global = true, default_value_t = DEFAULT_DEADLINE_MS, value_parser = clap::value_parser!(u64).range(1..=MAX_DEADLINE_MS))]
    inference_deadline_ms: u64,
}

#[derive(Subcommand)]
enum ModelsAction {
    /// One line per model: version, framework, signature, checksum status.
    List,
    /// Check every active model's checksum, load it on the backend and run one row.
    Verify,
    /// Everything about one model (or all): file, checksum, opsets, operators, inputs, outputs.
    Info {
        /// Model name; all models when absent.
        name: Option<String>,
    },
}

pub fn run(args: &ModelsArgs) -> Outcome {
    let choice = BackendChoice::from(args.backend);
    let registry = Registry::load(&args.registry).map_err(invalid)?;
    match &args.action {
        ModelsAction::List => {
            list(&registry);
            Ok(ExitCode::SUCCESS)
        }
        ModelsAction::Verify => {
            let loader = Loader::new(choice, args.ort_dylib.as_deref())
                .with_deadline(Duration::from_millis(args.inference_deadline_ms));
            Ok(verify(&registry, &loader))
        }
        ModelsAction::Info { name } => info(&registry, name.as_deref()),
    }
}

/// `ok`, `MISMATCH` or `missing (...)`: the file against the registry's sha256.
fn checksum_status(spec: &ModelSpec) -> (String, Option<Vec<u8>>) {
    match quiver_config::files::read_regular(&spec.path, quiver_config::files::MODEL_FILE_LIMIT) {
        Ok(bytes) if sha256_hex(&bytes) == spec.sha256 => ("ok".into(), Some(bytes)),
        Ok(bytes) => ("MISMATCH".into(), Some(bytes)),
        Err(err) => (format!("unreadable ({err})"), None),
    }
}

fn signature(spec: &ModelSpec) -> (String, String) {
    let input = format!("{}[N,{}]", spec.dtype.as_str(), spec.n_features);
    let output = match &spec.output {
        OutputSpec::Classifier { classes, .. } => {
            let classes: Vec<String> = classes.iter().map(i64::to_string).collect();
            format!("classifier [{}]", classes.join(","))
        }
        OutputSpec::Regressor { threshold, .. } => format!("regressor ±{threshold}"),
    };
    (input, output)
}

fn list(registry: &Registry) {
    println!(
        "{:<24} {:<8} {:<9} {:<7} {:<10} {:<22} checksum",
        "model", "version", "framework", "active", "input", "output"
    );
    for spec in &registry.models {
        let (input, output) = signature(spec);
        let (checksum, _) = checksum_status(spec);
        println!(
            "{:<24} {:<8} {:<9} {:<7} {:<10} {:<22} {checksum}",
            spec.name,
            spec.version,
            spec.framework.as_str(),
            if spec.active { "yes" } else { "no" },
            input,
            output
        );
    }
}

/// Loads and runs every active model once, each call held to its deadline:
/// a model that would hang a run fails here, named, instead of hanging.
fn verify(registry: &Registry, loader: &Loader) -> ExitCode {
    match (
        loader.backend(),
        loader.ort_dylib(),
        loader.ort_unavailable(),
    ) {
        (Some(backend), Some(dylib), _) => println!("backend: {backend} ({})", dylib.display()),
        (Some(backend), None, Some(why)) => println!("backend: {backend} ({why})"),
        (Some(backend), None, None) => println!("backend: {backend}"),
        (None, _, why) => println!(
            "backend: none ({})",
            why.map(ToString::to_string).unwrap_or_default()
        ),
    }
    let mut failed = 0;
    for spec in &registry.models {
        if !spec.active {
            println!("skip  {} {} (inactive)", spec.name, spec.version);
            continue;
        }
        match loader.load(spec) {
            Ok(model) => match usable_outputs(spec, &model) {
                Ok(()) => println!(
                    "ok    {} {} on {}: sha256 ok, loaded and ran one row in {:.1} ms",
                    spec.name,
                    spec.version,
                    model.backend,
                    model.load_seconds() * 1e3
                ),
                Err(why) => {
                    failed += 1;
                    println!("FAIL  {} {}: {why}", spec.name, spec.version);
                }
            },
            Err(err) => {
                failed += 1;
                println!("FAIL  {err}");
            }
        }
    }
    let total = registry.models.iter().filter(|m| m.active).count();
    println!("{} of {total} active models verified", total - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID_INPUT)
    }
}

/// Runs one row of zeros, within the model's deadline, and reads the outputs
/// as the engine would: a model whose outputs the engine would ignore (not
/// finite, probabilities outside [0, 1] or not summing to 1) is not usable.
fn usable_outputs(spec: &ModelSpec, model: &quiver_infer::LoadedModel) -> Result<(), String> {
    let mut out = vec![0.0f32; model.n_outputs()];
    model
        .predict(&vec![0.0f32; model.n_features()], &mut out)
        .map_err(|err| format!("inference failed: {err}"))?;
    let output = quiver_runtime::models::model_info(spec).output;
    output
        .check(&out)
        .map_err(|_| format!("outputs {out:?} are not usable as its declared output (the engine would ignore every row)"))
}

fn info(registry: &Registry, name: Option<&str>) -> Outcome {
    let specs: Vec<&ModelSpec> = match name {
        Some(name) => match registry.get(name) {
            Some(spec) => vec![spec],
            None => {
                let names: Vec<&str> = registry.models.iter().map(|m| m.name.as_str()).collect();
                return Err(invalid(format!(
                    "error: no model {name:?} in {} (models: {})",
                    registry.path.display(),
                    names.join(", ")
                )));
            }
        },
        None => registry.models.iter().collect(),
    };
    for (i, spec) in specs.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let (input, output) = signature(spec);
        let (checksum, bytes) = checksum_status(spec);
        println!("{}", spec.name);
        println!("  version:    {}", spec.version);
        println!("  framework:  {}", spec.framework.as_str());
        println!("  active:     {}", spec.active);
        if let Some(regime) = &spec.regime {
            println!("  regime:     {regime}");
        }
        if let Some(deadline) = spec.deadline {
            println!(
                "  deadline:   {} per call",
                quiver_infer::deadline::millis(deadline)
            );
        }
        println!(
            "  file:       {} ({} bytes)",
            spec.path.display(),
            bytes.as_ref().map_or(0, Vec::len)
        );
        println!("  sha256:     {} ({checksum})", spec.sha256);
        println!("  input:      {input}");
        if let Some(names) = &spec.feature_names {
            println!("  features:   {}", names.join(", "));
        }
        println!("  output:     {output}");
        let Some(bytes) = bytes else { continue };
        match ModelGraph::parse(&bytes) {
            Ok(graph) => {
                let render = |tensors: &[quiver_infer::TensorInfo]| -> String {
                    let parts: Vec<String> = tensors
                        .iter()
                        .map(|t| format!("{} {}", t.name, t.render()))
                        .collect();
                    parts.join(", ")
                };
                let opsets: Vec<String> = graph
                    .opsets
                    .iter()
                    .map(|(domain, version)| {
                        let domain = if domain.is_empty() { "ai.onnx" } else { domain };
                        format!("{domain} {version}")
                    })
                    .collect();
                println!("  graph in:   {}", render(&graph.inputs));
                println!("  graph out:  {}", render(&graph.outputs));
                println!("  opsets:     {}", opsets.join(", "));
                println!("  operators:  {}", graph.operators().join(", "));
            }
            Err(err) => println!("  graph:      not a valid ONNX model: {err}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
