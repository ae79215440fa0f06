//! `slabfront function test NAME --event FILE.json`: one invocation on an event written as
//! CloudFront writes it, printed like `aws cloudfront test-function` prints its result.

use super::{event, Engine, FnOutcome, Functions};
use serde_json::json;
use std::sync::Arc;

/// The printed result and whether the function succeeded.
pub struct TestResult {
    /// The JSON printed: `FunctionOutput`, `ComputeUtilization`, `FunctionExecutionLogs`,
    /// `FunctionErrorMessage`, as `aws cloudfront test-function` names them.
    pub json: serde_json::Value,
    pub ok: bool,
}

/// Runs `name` from `cfg` on the event in `event_text`.
pub fn run(cfg: &config::Config, name: &str, event_text: &str) -> Result<TestResult, String> {
    let f = cfg
        .function(name)
        .ok_or_else(|| format!("no [[functions]] is named {name:?}"))?;
    let event: serde_json::Value =
        serde_json::from_str(event_text).map_err(|e| format!("the event is not JSON: {e}"))?;
    let functions = Functions::for_generation(cfg).map_err(|e| e.to_string())?;
    let mut engine = Engine::new(Arc::new(functions));
    let inv = engine.run_event_json(name, &event)?;
    let (output, error) = match &inv.outcome {
        FnOutcome::Error(e) => (String::new(), e.to_string()),
        other => (event::outcome_json(other).to_string(), String::new()),
    };
    Ok(TestResult {
        ok: error.is_empty(),
        json: json!({
            "FunctionSummary": { "Name": name, "Runtime": f.runtime.as_str(), "Comment": f.comment },
            "ComputeUtilization": inv.utilization.to_string(),
            "ComputeMicroseconds": inv.compute.as_micros() as u64,
            "FunctionExecutionLogs": inv.logs,
            "FunctionErrorMessage": error,
            "FunctionOutput": output,
        }),
    })
}
