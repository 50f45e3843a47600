//! The one inference contract both backends implement.

use std::time::Instant;

use crate::error::InferError;

/// Which runtime executes a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// ONNX Runtime through the `ort` crate (libonnxruntime.so loaded at run time).
    OnnxRuntime,
    /// `tract-onnx`, pure Rust: the fallback when ONNX Runtime is absent.
    Tract,
}

impl Backend {
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::OnnxRuntime => "onnxruntime",
            Backend::Tract => "tract",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which backend a store or loader should use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendChoice {
    /// ONNX Runtime when its library loads, otherwise tract.
    #[default]
    Auto,
    /// ONNX Runtime only; models fail to load when it is unavailable.
    OnnxRuntime,
    /// tract only (tree ensembles are refused).
    Tract,
}

impl BackendChoice {
    pub const NAMES: &'static [&'static str] = &["auto", "onnxruntime", "tract"];

    /// Parses `auto`, `onnxruntime` (or `ort`) and `tract`.
    pub fn parse(text: &str) -> Option<BackendChoice> {
        Some(match text {
            "auto" => BackendChoice::Auto,
            "onnxruntime" | "ort" => BackendChoice::OnnxRuntime,
            "tract" => BackendChoice::Tract,
            _ => return None,
        })
    }
}

/// Batched inference on `f32` rows.
///
/// `rows` holds `k` rows of [`n_features`](Predictor::n_features) values,
/// row-major; `out` receives `k` rows of [`n_outputs`](Predictor::n_outputs)
/// values: the class probabilities (in the registry's class order) for a
/// classifier, the predicted value for a regressor. The caller owns both
/// buffers so a steady stream of calls does not allocate on our side (the
/// runtimes may still allocate their own intermediate tensors).
///
/// Implementations are shareable across threads: a pool's workers and the
/// replay batcher call the same predictor.
pub trait Predictor: Send + Sync {
    fn backend(&self) -> Backend;

    fn n_features(&self) -> usize;

    /// Values written per row.
    fn n_outputs(&self) -> usize;

    /// Runs the model on every row of `rows`; `out.len()` must be
    /// `rows.len() / n_features * n_outputs`.
    fn predict(&self, rows: &[f32], out: &mut [f32]) -> Result<usize, InferError>;

    /// As [`Predictor::predict`], stopped at `deadline` with
    /// [`InferError::Interrupted`] where the backend can be stopped (ONNX
    /// Runtime). The default runs the call to its end: the caller times it
    /// (see [`crate::deadline`]).
    fn predict_within(
        &self,
        rows: &[f32],
        out: &mut [f32],
        deadline: Instant,
    ) -> Result<usize, InferError> {
        let _ = deadline;
        self.predict(rows, out)
    }
}

/// Checks buffer sizes against a signature; returns the number of rows.
pub(crate) fn row_count(
    model: &str,
    n_features: usize,
    n_outputs: usize,
    rows: &[f32],
    out: &[f32],
) -> Result<usize, InferError> {
    if n_features == 0 || !rows.len().is_multiple_of(n_features) {
        return Err(InferError::Shape {
            model: model.to_owned(),
            message: format!(
                "input has {} values, not a whole number of {n_features}-feature rows",
                rows.len()
            ),
        });
    }
    let k = rows.len() / n_features;
    if out.len() != k * n_outputs {
        return Err(InferError::Shape {
            model: model.to_owned(),
            message: format!(
                "output buffer holds {} values, {k} rows need {}",
                out.len(),
                k * n_outputs
            ),
        });
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_count_checks_both_buffers() {
        assert_eq!(row_count("m", 3, 2, &[0.0; 6], &[0.0; 4]), Ok(2));
        assert_eq!(row_count("m", 3, 2, &[], &[]), Ok(0));
        let err = row_count("m", 3, 2, &[0.0; 7], &[0.0; 4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "model m: input has 7 values, not a whole number of 3-feature rows"
        );
        let err = row_count("m", 3, 2, &[0.0; 6], &[0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "model m: output buffer holds 3 values, 2 rows need 4"
        );
    }

    #[test]
    fn backend_choice_names() {
        for name in BackendChoice::NAMES {
            assert!(BackendChoice::parse(name).is_some(), "{name}");
        }
        assert_eq!(
            BackendChoice::parse("ort"),
            Some(BackendChoice::OnnxRuntime)
        );
        assert_eq!(BackendChoice::parse("cuda"), None);
        assert_eq!(Backend::OnnxRuntime.to_string(), "onnxruntime");
    }
}
