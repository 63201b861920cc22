//! `run.json`: the run record as it is, pretty-printed.

use crate::record::RunRecord;

pub fn render(record: &RunRecord) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write(record, &mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Serializes `record` into `out` as it goes, without building the text first.
pub fn write(record: &RunRecord, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, record)?;
    out.write_all(b"\n")
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
