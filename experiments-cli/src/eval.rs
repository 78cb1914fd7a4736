//! `experiments eval`.

use std::io::Write;
use std::process::ExitCode;

use experiments_sdk::core::{Experiments, Explanation, OwnedEvent};
use serde_json::json;

use crate::{ConfigFile, Format, config_and_inputs, emit};

/// Evaluates one experiment for the inputs and prints the variant, the event and the path.
/// Exit status 1 when baseplate would raise, 2 when the file or inputs are unusable.
pub fn run(
    file: &ConfigFile<'_>,
    experiment: &str,
    args: &[String],
    now: f64,
    explain: bool,
    format: Format,
) -> ExitCode {
    let (config, inputs) = match config_and_inputs("eval", file, args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut trace = Explanation::default();
    let mut events: Vec<OwnedEvent> = Vec::new();
    let mut client = Experiments::new(&config, now, &mut events);
    let result = client.variant_traced(experiment, &inputs, None, &mut trace);
    drop(client);
    let (variant, outcome) = match result {
        Ok(r) => r,
        Err(e) => {
            return emit("eval", ExitCode::from(1), |out| match format {
                Format::Json => writeln!(
                    out,
                    "{}",
                    json!({"error": e.to_string(), "python_exception": e.python_exception()})
                ),
                Format::Text => {
                    writeln!(out, "error: {e} (baseplate raises {})", e.python_exception())
                }
            });
        }
    };
    let event = events.first().map(|e| serde_json::to_value(e).unwrap_or_default());
    emit("eval", ExitCode::SUCCESS, |out| match format {
        Format::Json => {
            let steps: Vec<_> = if explain {
                trace.steps.iter().map(|s| json!({"text": s.text, "step": s.data})).collect()
            } else {
                Vec::new()
            };
            writeln!(out, "{}", json!({"variant": variant, "event": event, "explain": steps}))
        }
        Format::Text => {
            writeln!(out, "variant: {}", variant.unwrap_or("none"))?;
            match (&event, outcome) {
                (Some(e), _) => writeln!(out, "event: {e}")?,
                (None, Some(why)) => writeln!(
                    out,
                    "event: none ({})",
                    serde_json::to_value(why).unwrap_or_default().as_str().unwrap_or("")
                )?,
                (None, None) => writeln!(out, "event: none")?,
            }
            if explain {
                writeln!(out, "explain:")?;
                for s in &trace.steps {
                    writeln!(out, "  {}", s.text)?;
                }
            }
            Ok(())
        }
    })
}
