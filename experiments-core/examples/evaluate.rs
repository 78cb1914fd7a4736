//! Evaluates the example config shipped in `examples/experiments.json` for a few users, with
//! the decision path of one call and the events a request logs.
//!
//! `cargo run -p experiments-core --example evaluate`

use experiments_core::{Config, Experiments, Explanation, Inputs, OwnedEvent, User};

const CONFIG: &str = include_str!("experiments.json");
/// 2025-01-01T00:00:00Z: every example experiment is running.
const NOW: f64 = 1_735_689_600.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse(CONFIG)?;
    let report = config.report(NOW);
    println!("config: {} experiments, {} valid", report.experiments, report.valid);
    for e in &report.invalid {
        println!("  invalid: {e}");
    }

    let mut events: Vec<OwnedEvent> = Vec::new();
    for (i, user_id) in ["t2_1", "t2_2", "t2_3", "t2_qa1"].iter().enumerate() {
        // One request per user.
        let mut request = Experiments::new(&config, NOW, &mut events);
        let mut inputs = Inputs::new()
            .with("app_name", if i % 2 == 0 { "ios" } else { "web" })
            .with("account_age_days", 30)
            .with("device_id", format!("dev-{i}"));
        inputs.merge_user(&User {
            user_id: Some((*user_id).to_owned()),
            logged_in: true,
            cookie_created_timestamp: None,
        });
        let mut row = Vec::new();
        for name in
            ["checkout_redesign", "feed_ranking", "dark_mode", "legacy_search", "broken_example"]
        {
            let variant = request.variant(name, &inputs, None)?;
            row.push(format!("{name}={}", variant.unwrap_or("-")));
        }
        request.expose("checkout_redesign", Some("one_page"), &inputs);
        println!("{user_id}: {}", row.join(" "));
    }

    println!("\nwhy does t2_1 get its checkout_redesign variant?");
    let inputs =
        Inputs::new().with("user_id", "t2_1").with("app_name", "ios").with("account_age_days", 30);
    let mut explanation = Explanation::default();
    let mut request = Experiments::new(&config, NOW, Vec::<OwnedEvent>::new());
    request.variant_traced("checkout_redesign", &inputs, None, &mut explanation)?;
    for step in &explanation.steps {
        println!("  {}", step.text);
    }

    println!("\nevents logged ({}):", events.len());
    for e in &events {
        println!("  {}", serde_json::to_string(e)?);
    }
    Ok(())
}
