//! Nothing left behind: after the whole built-in suite has run against the sandbox,
//! every Appointment the suite created is cancelled (Canvas has no DELETE for
//! appointments, and none for practitioners: cancelling is all the API allows).

use crate::common::*;

#[test]
fn the_built_in_suites_cancel_every_appointment_they_create() {
    for (double_booking, versioning) in [("allowed", "true"), ("forbidden", "false")] {
        let sbx = start_sandbox(&[
            ("double_booking", double_booking),
            ("versioning", versioning),
        ]);
        let dir = scratch(&format!("cleanup-{double_booking}"));
        let mut target = format!("base_url: {}\nvars:\n", sbx.base_url);
        for (k, v) in fhirconf::sandbox::seed_vars() {
            target.push_str(&format!("  {k}: {}\n", serde_json::json!(v)));
        }
        target.push_str(&format!(
            "features: {{ double_booking: {double_booking}, versioning: {versioning}, auth: \"off\", rate_limit: \"off\" }}\n"
        ));
        let t = dir.join("t.yaml");
        std::fs::write(&t, target).unwrap();
        let out = run_with_reports(&dir, &["--target", t.to_str().unwrap(), "scenarios"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        let stats = sbx.stats();
        assert!(
            stats["created"]["Appointment"].as_u64().unwrap() > 10,
            "the suite booked appointments: {stats}"
        );
        assert_eq!(
            stats["appointments_not_cancelled"], 0,
            "double_booking={double_booking}: {stats}"
        );
    }
}
