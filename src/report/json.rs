//! `run.json`: the run record as it is, pretty-printed.

use crate::record::RunRecord;

pub fn render(record: &RunRecord) -> String {
    let mut text =
        serde_json::to_string_pretty(record).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        let record = crate::report::fixtures::record();
        let text = render(&record);
        let back = RunRecord::from_json(&text, "run.json").unwrap();
        assert_eq!(render(&back), text);
    }

    #[test]
    fn round_trips_as_json_with_lowercase_verdicts() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&crate::report::fixtures::record())).unwrap();
        assert_eq!(v["schema_version"], 2);
        let verdicts: Vec<&str> = v["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["verdict"].as_str().unwrap())
            .collect();
        assert_eq!(verdicts, ["passed", "failed", "error", "skipped"]);
        assert_eq!(
            v["scenarios"][1]["steps"][1]["checks"][0]["actual"],
            "\"booked\""
        );
    }
}
