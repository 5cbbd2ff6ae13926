//! The README's configuration tables, checked against the code: every default and range
//! they state for a number is what the functions' and the local run's configuration
//! readers actually do.

use std::collections::HashMap;

/// `variable → (default cell, range cell)` from the README's configuration tables.
fn documented() -> HashMap<String, (String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let mut rows = HashMap::new();
    let mut in_table = false;
    for line in readme.lines() {
        if line.starts_with("| variable | read by | default | range | meaning |") {
            in_table = true;
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table || line.starts_with("| ---") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        rows.insert(name, (cells[3].to_string(), cells[4].to_string()));
    }
    rows
}

fn base() -> Vec<(&'static str, String)> {
    vec![
        ("TABLE_NAME", "t".into()),
        ("EVENT_BUS_NAME", "b".into()),
        ("INTENT_BASE_URL", "https://api.example.test/api".into()),
        (
            "INTENT_TOKEN_URL",
            "https://accounts.example.test/oauth/token".into(),
        ),
        ("INTENT_CLIENT_ID", "id".into()),
        ("INTENT_CLIENT_SECRET", "secret".into()),
        ("PARTNER_CONTRACTS", "{}".into()),
    ]
}

fn settings(pairs: Vec<(&'static str, String)>) -> settings::Settings<'static> {
    settings::Settings::from_lookup(move |name| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    })
}

pub(crate) fn with(name: &'static str, value: String) -> settings::Settings<'static> {
    let mut pairs = base();
    pairs.push((name, value));
    settings(pairs)
}

fn closer_accepts(name: &'static str, value: String) -> bool {
    oncall_closer::CloserConfig::from_settings(&with(name, value)).is_ok()
}

fn partner_accepts(name: &'static str, value: String) -> bool {
    partner_lambda::FunctionConfig::from_settings(&with(name, value)).is_ok()
}

fn local_accepts(name: &'static str, value: String) -> bool {
    local_bridge::config::LocalConfig::from_settings(&with(name, value)).is_ok()
}

/// The range cell `a–b` says exactly which values `accepts` takes.
fn assert_range(
    rows: &HashMap<String, (String, String)>,
    name: &'static str,
    accepts: fn(&'static str, String) -> bool,
) {
    let range = &rows
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not documented"))
        .1;
    let (low, high) = range
        .split_once('–')
        .unwrap_or_else(|| panic!("{name}: range {range:?} is not a–b"));
    let (low, high): (i128, i128) = (low.trim().parse().unwrap(), high.trim().parse().unwrap());
    assert!(
        accepts(name, low.to_string()),
        "{name} refuses {low}, the README's minimum"
    );
    assert!(
        accepts(name, high.to_string()),
        "{name} refuses {high}, the README's maximum"
    );
    assert!(
        !accepts(name, (low - 1).to_string()),
        "{name} takes {}, under the README's range",
        low - 1
    );
    assert!(
        !accepts(name, (high + 1).to_string()),
        "{name} takes {}, over the README's range",
        high + 1
    );
}

fn assert_default(rows: &HashMap<String, (String, String)>, name: &str, code: impl ToString) {
    let cell = &rows
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not documented"))
        .0;
    let code = code.to_string();
    assert!(
        cell.trim_matches('`') == code || cell.contains(&code),
        "{name}: the README says {cell:?}, the code {code:?}"
    );
}

#[test]
fn the_readme_states_the_closer_and_forwarder_defaults_and_ranges_the_code_applies() {
    let rows = documented();
    let closer = oncall_closer::CloserConfig::from_settings(&settings(base())).unwrap();
    assert_default(&rows, "CLOSER_CONCURRENCY", closer.policy.concurrency);
    assert_default(&rows, "TICK_TOLERANCE_MINUTES", closer.tolerance.as_mins());
    assert_default(
        &rows,
        "CLOSED_FILE_RETENTION_DAYS",
        closer.policy.closure.retention.as_hours() / 24,
    );
    assert_default(&rows, "MAX_DOCUMENT_BYTES", closer.documents.max_bytes);
    assert_default(&rows, "EVENT_SOURCE", &closer.core.event_source);
    assert_default(
        &rows,
        "INTENT_MAX_ATTEMPTS",
        format!("{} elsewhere", closer.core.intent.retry.max_attempts),
    );
    assert_default(
        &rows,
        "INTENT_REQUEST_TIMEOUT_MS",
        format!(
            "{} elsewhere",
            closer.core.intent.request_timeout.as_millis()
        ),
    );
    assert_default(&rows, "S3_FORCE_PATH_STYLE", closer.s3_force_path_style);
    assert_default(&rows, "AUTO_CLOSE_OUTCOME", closer.policy.outcome.as_str());
    for name in [
        "CLOSER_CONCURRENCY",
        "TICK_TOLERANCE_MINUTES",
        "CLOSED_FILE_RETENTION_DAYS",
        "MAX_DOCUMENT_BYTES",
        "INTENT_MAX_ATTEMPTS",
        "INTENT_REQUEST_TIMEOUT_MS",
    ] {
        assert_range(&rows, name, closer_accepts);
    }
    let forwarder = document_forwarder::ForwarderConfig::from_settings(&settings(base())).unwrap();
    assert_default(&rows, "MAX_DOCUMENT_BYTES", forwarder.policy.max_bytes);
}

#[test]
fn the_readme_states_the_partner_functions_own_intent_budget() {
    let rows = documented();
    let partner = partner_lambda::FunctionConfig::from_settings(&settings(base())).unwrap();
    assert_default(
        &rows,
        "INTENT_MAX_ATTEMPTS",
        format!(
            "{} in the partner functions",
            partner.core.intent.retry.max_attempts
        ),
    );
    assert_default(
        &rows,
        "INTENT_REQUEST_TIMEOUT_MS",
        format!(
            "{} in the partner functions",
            partner.core.intent.request_timeout.as_millis()
        ),
    );
    assert_default(
        &rows,
        "CLOSED_FILE_RETENTION_DAYS",
        partner.closure.retention.as_hours() / 24,
    );
    assert_default(
        &rows,
        "UPLOAD_URL_TTL_SECONDS",
        partner.uploads.url_lifetime.as_secs(),
    );
    assert_default(&rows, "MAX_DOCUMENT_BYTES", partner.uploads.max_bytes);
    assert_default(&rows, "S3_FORCE_PATH_STYLE", partner.s3_force_path_style);
    assert_default(
        &rows,
        "CLOSURES_WRITTEN_UNREAD",
        partner.closure.written_unread,
    );
    for name in ["UPLOAD_URL_TTL_SECONDS", "MAX_DOCUMENT_BYTES"] {
        assert_range(&rows, name, partner_accepts);
    }
}

#[test]
fn the_readme_states_the_local_runs_defaults_and_ranges() {
    let rows = documented();
    let local = local_bridge::config::LocalConfig::from_settings(&settings(Vec::new())).unwrap();
    assert_default(&rows, "LISTEN_ADDR", local.listen);
    assert_default(&rows, "SIMULATOR_ADDR", local.simulator_listen);
    assert_default(&rows, "DATA_DIR", local.data_dir.display());
    assert_default(&rows, "INBOX_POLL_MS", local.inbox_poll.as_millis());
    assert_default(&rows, "INBOX_SETTLE_MS", local.inbox_settle.as_millis());
    assert_default(&rows, "CLOSER_EVERY_SECS", local.closer_every.as_secs());
    for name in ["INBOX_POLL_MS", "INBOX_SETTLE_MS", "CLOSER_EVERY_SECS"] {
        assert_range(&rows, name, local_accepts);
    }
}

/// `MinValue`/`MaxValue` of a template parameter.
fn template_bounds(template: &str, parameter: &str) -> (String, String) {
    let block = template
        .split(&format!("\n  {parameter}:\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no parameter {parameter}"));
    let value = |key: &str| {
        block
            .lines()
            .take_while(|line| line.starts_with("    ") || line.is_empty())
            .find_map(|line| line.trim().strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("{parameter} has no {key}"))
    };
    (value("MinValue:"), value("MaxValue:"))
}

#[test]
fn the_templates_parameter_bounds_are_the_ranges_the_code_enforces() {
    let rows = documented();
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    for (parameter, variable) in [
        ("ClosedFileRetentionDays", "CLOSED_FILE_RETENTION_DAYS"),
        ("MaxDocumentBytes", "MAX_DOCUMENT_BYTES"),
        ("UploadUrlTtlSeconds", "UPLOAD_URL_TTL_SECONDS"),
    ] {
        let (low, high) = template_bounds(&template, parameter);
        assert_eq!(
            rows[variable].1,
            format!("{low}–{high}"),
            "{parameter} and {variable} disagree"
        );
    }
}

/// The retention reaches every function that stores a file's items: the claim's intake
/// stores the opening with its expiry (a closing within the margin does not write it
/// again), so a retention the stack shortens must reach it as it reaches the closure.
#[test]
fn every_function_that_stores_items_gets_the_retention() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    for function in [
        "ClaimIntakeFunction",
        "InterventionClosureFunction",
        "DocumentForwarderFunction",
        "OnCallCloserFunction",
    ] {
        let start = template
            .find(&format!("\n  {function}:\n"))
            .unwrap_or_else(|| panic!("no {function}"));
        let rest = &template[start + 1..];
        // Up to the next resource (two spaces, then a name).
        let end = rest
            .match_indices("\n  ")
            .map(|(at, _)| at)
            .find(|&at| rest[at + 3..].starts_with(|c: char| c.is_ascii_alphabetic()))
            .unwrap_or(rest.len());
        assert!(
            rest[..end].contains("CLOSED_FILE_RETENTION_DAYS: !Ref ClosedFileRetentionDays"),
            "{function} does not get CLOSED_FILE_RETENTION_DAYS"
        );
    }
}

/// The stack's Intent URLs are refused at deploy time where the functions would refuse
/// them at start (an `http` URL off loopback: the client secret and the tokens would travel
/// in clear), not accepted by CloudFormation and then failing every cold start.
#[test]
fn the_templates_intent_urls_are_those_the_functions_accept() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    for parameter in ["IntentBaseUrl", "IntentTokenUrl"] {
        let start = template
            .find(&format!("\n  {parameter}:\n"))
            .unwrap_or_else(|| panic!("no {parameter}"));
        let pattern = template[start..]
            .lines()
            .find_map(|line| line.trim().strip_prefix("AllowedPattern: "))
            .unwrap_or_else(|| panic!("{parameter} has no AllowedPattern"));
        // The pattern is a scheme (`s?` an optional `s`) and anything after it.
        let scheme = pattern
            .strip_prefix('^')
            .and_then(|rest| rest.strip_suffix(".+"))
            .unwrap_or_else(|| panic!("{parameter}: {pattern} is not ^<scheme>://.+"));
        for url in [
            "http://api.hubintent.com/api",
            "https://api.hubintent.com/api",
        ] {
            let schemes = [scheme.replace("s?", ""), scheme.replace("s?", "s")];
            let matched = schemes
                .iter()
                .any(|scheme| url.starts_with(scheme.as_str()) && url.len() > scheme.len());
            assert_eq!(
                matched,
                intent_client::is_acceptable_url(url),
                "{parameter} ({pattern}) and the functions disagree on {url}"
            );
        }
    }
}

/// Every quitus key the forwarder takes reaches it: the bucket's notifications (a prefix and
/// a suffix each, matched as written, case included) let through a partner's upload under
/// any name the API accepts (`.PDF` as well as `.pdf`) and an operator's drop. A key they
/// filtered out would never be forwarded, nor recorded anywhere: lost without a trace.
#[test]
fn every_quitus_key_the_forwarder_takes_reaches_it() {
    use oncall_domain::documents::{parse_quitus_key, upload_key};
    use oncall_domain::uploads::is_acceptable_file_name;
    let template = crate::openapi::contract::parse_yaml(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap(),
    )
    .unwrap();
    let events = template["Resources"]["DocumentForwarderFunction"]["Properties"]["Events"]
        .as_object()
        .expect("the forwarder's events");
    let filters: Vec<(String, String)> = events
        .values()
        .filter(|event| event["Type"] == "S3")
        .map(|event| {
            let rule = |name: &str| {
                event["Properties"]["Filter"]["S3Key"]["Rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|rule| rule["Name"] == name)
                    .map(|rule| rule["Value"].as_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            (rule("prefix"), rule("suffix"))
        })
        .collect();
    assert_eq!(filters.len(), 2, "{filters:?}");
    let file = oncall_domain::model::FileId::new("INTER-0500", "contract1");
    for name in ["quitus.pdf", "Scan 0042.PDF", "quitus signé.Pdf"] {
        assert!(is_acceptable_file_name(name), "{name}");
        for key in [
            upload_key(&file, "6f1c0b7e", name),
            format!("operator-quitus/contract1/INTER-0500/{name}"),
        ] {
            assert!(parse_quitus_key(&key).is_ok(), "{key}");
            assert!(
                filters
                    .iter()
                    .any(|(prefix, suffix)| key.starts_with(prefix) && key.ends_with(suffix)),
                "{key} never reaches the forwarder ({filters:?})"
            );
        }
    }
}

/// The closer's backlog alarms (`OldestPendingEventAge`, `OldestPendingDocumentAge`,
/// `OldestUnpublishedDomainEventAge`, `FailedEvents`, `RejectedDocuments`: one data point per
/// closer run) work at every run cadence the stack allows (`ResendEveryMinutes`, 1 to 60):
/// a backlog that stays raises the alarm within a period and a run, and the alarm stays on
/// while it lasts (no "resolved" between two runs). CloudWatch's rule, for these settings:
/// each period holds a data point if a run fell in it; the alarm looks at the last
/// `EvaluationPeriods` periods and needs `DatapointsToAlarm` of them breaching; a period
/// without data is good (`notBreaching`), bad (`breaching`), or skipped, the state held
/// when none is left (`ignore`, `missing`).
#[test]
fn the_closers_backlog_alarms_fire_and_hold_at_every_run_cadence() {
    let template = crate::openapi::contract::parse_yaml(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap(),
    )
    .unwrap();
    let resources = template["Resources"].as_object().unwrap();
    let mut checked = 0;
    for (name, alarm) in resources {
        let properties = &alarm["Properties"];
        let metric = properties["MetricName"].as_str().unwrap_or_default();
        if alarm["Type"] != "AWS::CloudWatch::Alarm"
            || ![
                "OldestPendingEventAge",
                "OldestPendingDocumentAge",
                "OldestUnpublishedDomainEventAge",
                "FailedEvents",
                "RejectedDocuments",
            ]
            .contains(&metric)
        {
            continue;
        }
        checked += 1;
        let number = |key: &str, default: u64| {
            properties[key]
                .as_u64()
                .or_else(|| properties[key].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(default)
        };
        let period_minutes = number("Period", 300) / 60;
        let evaluation = number("EvaluationPeriods", 1) as usize;
        let needed = number("DatapointsToAlarm", evaluation as u64) as usize;
        let missing = properties["TreatMissingData"]
            .as_str()
            .unwrap_or("missing")
            .to_string();
        for cadence in [1_u64, 5, 10, 15, 30, 60] {
            // Four hours of runs, each seeing the backlog (a breaching value).
            let periods = 4 * 60 / period_minutes;
            let has_data: Vec<bool> = (0..periods)
                .map(|p| {
                    let (start, end) = (p * period_minutes, (p + 1) * period_minutes);
                    (0..=4 * 60 / cadence).any(|run| (start..end).contains(&(run * cadence)))
                })
                .collect();
            let mut state = "OK";
            let mut alarmed_at = None;
            for at in (evaluation - 1)..periods as usize {
                let window = &has_data[at + 1 - evaluation..=at];
                let present = window.iter().filter(|data| **data).count();
                let breaching = match missing.as_str() {
                    "breaching" => window.len(),
                    _ => present,
                };
                let counted = match missing.as_str() {
                    "notBreaching" | "breaching" => window.len(),
                    _ => present,
                };
                let next = if counted == 0 {
                    state
                } else if breaching >= needed.min(counted) {
                    "ALARM"
                } else {
                    "OK"
                };
                if next == "ALARM" && alarmed_at.is_none() {
                    alarmed_at = Some(at as u64 * period_minutes);
                }
                assert!(
                    !(state == "ALARM" && next == "OK"),
                    "{name}: with a run every {cadence} min the alarm clears between runs \
                     while the backlog stays ({missing}, {evaluation} period(s) of {period_minutes} min)"
                );
                state = next;
            }
            let alarmed_at = alarmed_at.unwrap_or_else(|| {
                panic!(
                    "{name}: with a run every {cadence} min the alarm never fires \
                     ({missing}, {needed} of {evaluation} period(s) of {period_minutes} min)"
                )
            });
            assert!(
                alarmed_at <= period_minutes * evaluation as u64 + cadence,
                "{name}: fires after {alarmed_at} min with a run every {cadence} min"
            );
        }
    }
    assert_eq!(checked, 5, "every backlog alarm found");
}

/// Every on-call start and end time the stack's parameters accept is one the closer
/// accepts: a pair it refuses (an end not before the start) would pass `sam deploy` and
/// then end no period (every closer invocation failing, re-sending only) until someone
/// redeploys.
#[test]
fn the_templates_on_call_times_are_those_the_closer_accepts() {
    let template = crate::openapi::contract::parse_yaml(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap(),
    )
    .unwrap();
    let allowed = |parameter: &str| {
        let pattern = template["Parameters"][parameter]["AllowedPattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{parameter} has no AllowedPattern"))
            .to_string();
        let schema = serde_json::json!({"type": "string", "pattern": pattern});
        let validator = jsonschema::validator_for(&schema).unwrap();
        (0..24 * 60)
            .map(|minute| format!("{:02}:{:02}", minute / 60, minute % 60))
            .filter(|time| validator.is_valid(&serde_json::json!(time)))
            .collect::<Vec<String>>()
    };
    let (starts, ends) = (allowed("OnCallStartTime"), allowed("OnCallEndTime"));
    assert!(starts.contains(&"18:00".to_string()) && ends.contains(&"08:00".to_string()));
    for start in &starts {
        for end in &ends {
            let accepted = oncall_domain::calendar::CalendarConfig::from_env_values(
                None,
                Some(start),
                Some(end),
                None,
            );
            assert!(
                accepted.is_ok(),
                "OnCallStartTime={start}, OnCallEndTime={end}: deployed, then refused by the closer: {accepted:?}"
            );
        }
    }
}

/// Every single day the stack's `OnCallExtraNonWorkingDays` accepts is one the closer
/// accepts, and every day of this century the closer accepts passes: a 2026-13-01 or a
/// 2026-02-29 would pass `sam deploy` and then end no period. (A range's order and length
/// are beyond a pattern: the closer logs it at start, and its failing ticks raise the
/// errors alarm: `oncall_closer::a_calendar_the_closer_refuses_stops_only_the_ending_of_periods`.)
#[test]
fn the_templates_extra_non_working_days_are_dates_the_closer_accepts() {
    let template = crate::openapi::contract::parse_yaml(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap(),
    )
    .unwrap();
    let pattern = template["Parameters"]["OnCallExtraNonWorkingDays"]["AllowedPattern"]
        .as_str()
        .expect("OnCallExtraNonWorkingDays has an AllowedPattern")
        .to_string();
    let validator =
        jsonschema::validator_for(&serde_json::json!({"type": "string", "pattern": pattern}))
            .unwrap();
    let allowed = |value: &str| validator.is_valid(&serde_json::json!(value));
    let accepted = |value: &str| {
        oncall_domain::calendar::CalendarConfig::from_env_values(None, None, None, Some(value))
            .is_ok()
    };
    let mut days_accepted = 0;
    for year in [1999, 2000, 2001, 2024, 2026, 2028, 2096, 2099, 2100] {
        for month in 0..=13 {
            for day in 0..=32 {
                let date = format!("{year}-{month:02}-{day:02}");
                if allowed(&date) {
                    assert!(
                        accepted(&date),
                        "{date}: deployed, then refused by the closer"
                    );
                }
                if (2000..2100).contains(&year) && accepted(&date) {
                    days_accepted += 1;
                    assert!(allowed(&date), "{date}: a real day the stack refuses");
                    let listed = format!("2026-12-24, {date} .. {date},2026-12-31");
                    assert!(allowed(&listed) && accepted(&listed), "{listed}");
                }
            }
        }
    }
    // 2000, 2024, 2028 and 2096 are leap years.
    assert_eq!(days_accepted, 4 * 366 + 3 * 365);
    for value in [
        "",
        "2026-12-24",
        "2026-12-28..2026-12-31",
        " 2026-12-24 , 2027-01-02 ",
    ] {
        assert!(allowed(value) && accepted(value), "{value:?}");
    }
    for value in [
        "2026-12-24,",
        "24/12/2026",
        "2026-12-24...2026-12-25",
        "2026-1-2",
    ] {
        assert!(!allowed(value), "{value:?} passes the pattern");
    }
}

/// A first `sam deploy` in a new account goes through, and one that fails leaves nothing
/// behind to block the next: no function reserves concurrency under the parameters'
/// defaults (an account at its first concurrency quota, often 10, refuses any
/// reservation and the stack rolls back), and nothing kept past the stack is kept when
/// the stack's own creation rolls back (a retained bucket keeps its fixed name taken).
#[test]
fn a_first_deploy_reserves_no_concurrency_and_a_failed_one_leaves_no_name_taken() {
    let template =
        crate::openapi::contract::parse_yaml(&crate::openapi::repository_file("template.yaml"))
            .unwrap();
    let resources = template["Resources"].as_object().unwrap();
    let mut checked = 0;
    for (name, resource) in resources {
        if let Some(reserved) = resource["Properties"].get("ReservedConcurrentExecutions") {
            checked += 1;
            // `!If [Condition, value, !Ref AWS::NoValue]`, the condition
            // `!Equals [!Ref Parameter, "1"]`, false for the parameter's default.
            let branches = reserved
                .as_array()
                .unwrap_or_else(|| panic!("{name} reserves {reserved} whatever the parameters"));
            assert_eq!(branches[2], "AWS::NoValue", "{name}: {reserved}");
            let condition = &template["Conditions"][branches[0].as_str().unwrap()];
            let (parameter, when) = (condition[0].as_str().unwrap(), &condition[1]);
            let default = &template["Parameters"][parameter]["Default"];
            assert_ne!(
                default.to_string().trim_matches('"'),
                when.to_string().trim_matches('"'),
                "{name} reserves concurrency with {parameter}'s default"
            );
        }
        if let Some(policy) = resource.get("DeletionPolicy") {
            assert_ne!(
                policy, "Retain",
                "{name}: kept after a rolled-back creation (RetainExceptOnCreate)"
            );
        }
    }
    assert_eq!(checked, 1, "the closer's reservation is a parameter");
}

/// `install-tools.sh --deploy` installs what `sam build` and `sam deploy` need on a
/// machine without Node.js (DynamoDB Local, from npm, is the tests' alone); without
/// `--deploy` and without npm it stops and says what is missing.
#[test]
fn installing_the_deploy_tools_needs_no_npm() {
    let which = |command: &str| {
        ["/usr/bin", "/bin"]
            .iter()
            .map(|dir| std::path::Path::new(dir).join(command))
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("no {command}"))
    };
    let tools = std::env::temp_dir().join(format!(
        "install-tools-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let bin = tools.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // The Python tools as already installed (their stamps), and a PATH of the few
    // commands the script runs: no npm, no rustup.
    let script = crate::openapi::repository_file("infra/scripts/install-tools.sh");
    let version = |name: &str| {
        script
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=\"")))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {name} in install-tools.sh"))
            .to_string()
    };
    let stamps = [
        (
            "venv",
            format!(
                "moto{}-cfnlint{}-sam{}-oasv{}",
                version("MOTO_VERSION"),
                version("CFN_LINT_VERSION"),
                version("SAM_VERSION"),
                version("OPENAPI_SPEC_VALIDATOR_VERSION")
            ),
        ),
        (
            "build-venv",
            format!(
                "cargolambda{}-zig{}",
                version("CARGO_LAMBDA_VERSION"),
                version("ZIG_VERSION")
            ),
        ),
    ];
    for (venv, stamp) in stamps {
        std::fs::create_dir_all(tools.join(venv)).unwrap();
        std::fs::write(tools.join(venv).join(format!(".installed-{stamp}")), "").unwrap();
    }
    let run = |args: &[&str]| {
        std::process::Command::new(which("bash"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../infra/scripts/install-tools.sh"
            ))
            .args(args)
            .env_clear()
            .env("PATH", &bin)
            .env("ONCALL_TOOLS_DIR", &tools)
            .output()
            .unwrap()
    };
    for command in ["dirname", "mkdir", "rm", "touch"] {
        std::os::unix::fs::symlink(which(command), bin.join(command)).unwrap();
    }
    let deploy = run(&["--deploy"]);
    let stderr = String::from_utf8_lossy(&deploy.stderr);
    assert!(deploy.status.success(), "{stderr}");
    assert!(!tools.join("dynamodb").exists(), "{stderr}");
    let tests = run(&[]);
    let stderr = String::from_utf8_lossy(&tests.stderr);
    assert!(!tests.status.success());
    assert!(
        stderr.contains("npm") && stderr.contains("--deploy"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&tools).unwrap();
}

/// The local run serves the partner API as the partner functions do: Intent gets their
/// budget within a request (a partner has its 202 "pending" well before the request's
/// limit), the background runs the usual one; `INTENT_MAX_ATTEMPTS` and
/// `INTENT_REQUEST_TIMEOUT_MS` apply, and are refused out of range, whichever hub it
/// talks to (the simulator's included).
#[test]
fn the_local_run_budgets_intent_as_the_functions_do_whichever_hub() {
    let hub = || {
        intent_client::IntentConfig::new(
            "http://127.0.0.1:4010/api",
            "http://127.0.0.1:4010/oauth/token",
            "bridge-client",
            "bridge-secret",
        )
    };
    let partner = partner_lambda::FunctionConfig::from_settings(&settings(base())).unwrap();
    let background = intent_client::IntentConfig::from_settings(&settings(base())).unwrap();
    let defaults = local_bridge::intent_settings(&settings(Vec::new()), hub()).unwrap();
    assert_eq!(
        (
            defaults.api.retry.max_attempts,
            defaults.api.request_timeout,
            defaults.api.retry.max_total_delay
        ),
        (
            partner.core.intent.retry.max_attempts,
            partner.core.intent.request_timeout,
            partner.core.intent.retry.max_total_delay
        )
    );
    assert_eq!(
        (
            defaults.background.retry.max_attempts,
            defaults.background.request_timeout
        ),
        (background.retry.max_attempts, background.request_timeout)
    );
    let set = local_bridge::intent_settings(
        &settings(vec![
            ("INTENT_MAX_ATTEMPTS", "6".into()),
            ("INTENT_REQUEST_TIMEOUT_MS", "2000".into()),
        ]),
        hub(),
    )
    .unwrap();
    for config in [&set.api, &set.background] {
        assert_eq!(config.retry.max_attempts, 6);
        assert_eq!(config.request_timeout, std::time::Duration::from_secs(2));
    }
    for (name, value) in [
        ("INTENT_MAX_ATTEMPTS", "99"),
        ("INTENT_MAX_ATTEMPTS", "0"),
        ("INTENT_REQUEST_TIMEOUT_MS", "99"),
    ] {
        assert!(
            local_bridge::intent_settings(&settings(vec![(name, value.into())]), hub()).is_err(),
            "{name}={value}"
        );
    }
}
