//! The pure-Rust backend, `tract-onnx`: builds offline and needs no library,
//! so ML works out of the box for the model kinds it runs well (linear models,
//! MLPs). Tree ensembles are refused before this module sees them (see
//! [`crate::graph::TRACT_REFUSED`]).

use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;

use crate::error::InferError;
use crate::predictor::{row_count, Backend, Predictor};

type Plan = Arc<TypedRunnableModel>;

/// A model optimised for a symbolic batch size `N`, so one plan serves every
/// batch size, plus one for a single row: replay on tract runs row by row
/// (see [`crate::batch`]), and a plan with concrete shapes skips resolving
/// `N` and sizing every intermediate tensor on each call.
pub struct TractPredictor {
    model: String,
    n_features: usize,
    n_outputs: usize,
    plan: Plan,
    single: Plan,
    /// The single-row plan's run state, kept between calls (a fresh state
    /// per call allocates every intermediate tensor again). Calls that find
    /// it busy, from another thread, run on a state of their own.
    single_state: Mutex<Option<TypedSimpleState>>,
}

impl TractPredictor {
    /// Builds the plan for input 0 as `f32[N, n_features]`, keeping only the
    /// output `output` (the label branch, with operators tract may lack, is
    /// pruned away).
    pub fn new(
        model: &str,
        bytes: &[u8],
        output: &str,
        n_features: usize,
        n_outputs: usize,
    ) -> Result<TractPredictor, String> {
        let build = |rows: Option<usize>| -> TractResult<Plan> {
            let mut inference = tract_onnx::onnx().model_for_read(&mut &bytes[..])?;
            let batch = match rows {
                Some(rows) => rows.to_dim(),
                None => inference.symbols.sym("N").to_dim(),
            };
            inference.set_input_fact(
                0,
                InferenceFact::dt_shape(f32::datum_type(), tvec![batch, n_features.to_dim()]),
            )?;
            inference.select_outputs_by_name([output])?;
            inference.into_compact()?.into_optimized()?.into_runnable()
        };
        let plan = build(None).map_err(|e| format!("{e:#}"))?;
        let single = build(Some(1)).map_err(|e| format!("{e:#}"))?;
        Ok(TractPredictor {
            model: model.to_owned(),
            n_features,
            n_outputs,
            plan,
            single,
            single_state: Mutex::new(None),
        })
    }

    fn failed(&self, message: impl std::fmt::Display) -> InferError {
        InferError::Runtime {
            model: self.model.clone(),
            backend: Backend::Tract.as_str(),
            message: message.to_string(),
        }
    }
}

impl Predictor for TractPredictor {
    fn backend(&self) -> Backend {
        Backend::Tract
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    fn predict(&self, rows: &[f32], out: &mut [f32]) -> Result<usize, InferError> {
        let k = row_count(&self.model, self.n_features, self.n_outputs, rows, out)?;
        if k == 0 {
            return Ok(0);
        }
        let input = Tensor::from_shape(&[k, self.n_features], rows).map_err(|e| self.failed(e))?;
        let inputs = tvec![input.into()];
        let outputs = match self.single_state.try_lock() {
            Ok(mut state) if k == 1 => {
                let state = match &mut *state {
                    Some(state) => state,
                    None => state.insert(
                        TypedSimpleState::new(&self.single)
                            .map_err(|e| self.failed(format!("{e:#}")))?,
                    ),
                };
                state.run(inputs)
            }
            _ if k == 1 => self.single.run(inputs),
            _ => self.plan.run(inputs),
        }
        .map_err(|e| self.failed(format!("{e:#}")))?;
        let first = outputs
            .first()
            .ok_or_else(|| self.failed("the plan returned no output"))?;
        let view = first
            .try_as_plain_ram()
            .map_err(|e| self.failed(format!("{e:#}")))?;
        let data = view
            .as_slice::<f32>()
            .map_err(|e| self.failed(format!("{e:#}")))?;
        if data.len() != out.len() {
            return Err(self.failed(format!(
                "output has {} values for {k} rows, expected {}",
                data.len(),
                out.len()
            )));
        }
        out.copy_from_slice(data);
        Ok(k)
    }
}
