//! The table (markdown) and the JSON document.

use crate::child::{Measurement, RequestSample};
use crate::proxy::CallCounts;
use crate::{EXCHANGE_FLOOR, EXCHANGE_FLOOR_PACED};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// The median (the upper one of an even count).
fn median<T: Copy + Ord>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

fn percentile<T: Copy + Ord>(values: impl IntoIterator<Item = T>, p: f64) -> Option<T> {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort_unstable();
    if values.is_empty() {
        return None;
    }
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values.get(rank - 1).copied()
}

/// The warm requests' figures.
struct Warm {
    wall_p50: Duration,
    wall_p90: Duration,
    cpu_p50: Duration,
    cpu_mean: Duration,
    ticks_total: u64,
    page_faults_p50: u64,
    calls_p50: u64,
    calls_min: u64,
    calls_max: u64,
    /// Median count of each operation over the warm requests (0 when absent).
    by_operation_p50: BTreeMap<String, u64>,
}

fn warm(samples: &[RequestSample]) -> Option<Warm> {
    let totals: Vec<u64> = samples.iter().map(|s| s.calls.total()).collect();
    let operations: BTreeSet<&String> = samples.iter().flat_map(|s| s.calls.calls.keys()).collect();
    let cpu_sum: Duration = samples.iter().map(|s| s.cpu).sum();
    Some(Warm {
        wall_p50: median(samples.iter().map(|s| s.wall))?,
        wall_p90: percentile(samples.iter().map(|s| s.wall), 0.9)?,
        cpu_p50: median(samples.iter().map(|s| s.cpu))?,
        cpu_mean: cpu_sum / samples.len() as u32,
        ticks_total: samples.iter().map(|s| s.ticks).sum(),
        page_faults_p50: median(samples.iter().map(|s| s.page_faults))?,
        calls_p50: median(totals.iter().copied())?,
        calls_min: totals.iter().copied().min()?,
        calls_max: totals.iter().copied().max()?,
        by_operation_p50: operations
            .into_iter()
            .map(|op| {
                let counts = samples
                    .iter()
                    .map(|s| s.calls.calls.get(op).copied().unwrap_or(0));
                (op.clone(), median(counts).unwrap_or(0))
            })
            .collect(),
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ratio(value: f64, floor: f64) -> String {
    if floor > 0.0 {
        format!("{:.1}×", value / floor)
    } else {
        "–".into()
    }
}

fn calls_cell(m: &Measurement, warm: Option<&Warm>) -> String {
    let mut cell = format!("{}", m.first.calls.total());
    match warm {
        Some(w) if w.calls_min != w.calls_max => {
            let _ = write!(cell, " / {} ({}–{})", w.calls_p50, w.calls_min, w.calls_max);
        }
        Some(w) => {
            let _ = write!(cell, " / {}", w.calls_p50);
        }
        None => cell.push_str(" / –"),
    }
    if m.init_calls.total() > 0 {
        let _ = write!(cell, " (+{} at start)", m.init_calls.total());
    }
    cell
}

/// Each operation's median answer time.
pub fn median_latencies(latencies: BTreeMap<String, Vec<Duration>>) -> BTreeMap<String, Duration> {
    latencies
        .into_iter()
        .filter_map(|(operation, times)| Some((operation, median(times)?)))
        .collect()
}

/// The pace as JSON: milliseconds by operation.
pub fn pace_json(pace: &BTreeMap<String, Duration>) -> Value {
    pace.iter()
        .map(|(operation, time)| (operation.clone(), json!(round(ms(*time), 3))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The markdown table: the floor first, then the functions, with ratios to the floor;
/// `pace`, the emulators' median answer times the paced floor was answered after.
pub fn markdown(
    floor: &Measurement,
    functions: &[Measurement],
    pace: Option<&BTreeMap<String, Duration>>,
    verbose: bool,
) -> String {
    let mut out = String::new();
    out.push_str(
        "| function | binary | init wall | init CPU | init CPU vs floor | 1st request wall | 1st request CPU | warm wall p50 (p90) | warm CPU p50 | peak RSS | RSS vs floor | AWS calls 1st / warm p50 |\n",
    );
    out.push_str(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    let floor_cpu = ms(floor.init_cpu.cpu);
    let floor_rss = floor.peak_rss_kib as f64;
    for (index, m) in std::iter::once(floor).chain(functions).enumerate() {
        let warm = warm(&m.warm);
        let name = if index == 0 {
            format!("{} (floor)", m.name)
        } else if m.name == EXCHANGE_FLOOR {
            format!("{} (floor + a claim's exchanges)", m.name)
        } else if m.name == EXCHANGE_FLOOR_PACED {
            format!("{} (the same, answered as slowly as the emulators)", m.name)
        } else {
            m.name.clone()
        };
        let _ = writeln!(
            out,
            "| {name} | {:.2} MiB | {:.1} ms | {:.1} ms | {} | {:.1} ms | {:.1} ms | {} | {} | {:.1} MiB | {} | {} |",
            m.binary_bytes as f64 / (1024.0 * 1024.0),
            ms(m.init_wall),
            ms(m.init_cpu.cpu),
            ratio(ms(m.init_cpu.cpu), floor_cpu),
            ms(m.first.wall),
            ms(m.first.cpu),
            warm.as_ref().map_or("–".into(), |w| format!(
                "{:.1} ms ({:.1})",
                ms(w.wall_p50),
                ms(w.wall_p90)
            )),
            warm.as_ref()
                .map_or("–".into(), |w| format!("{:.2} ms", ms(w.cpu_p50))),
            mib(m.peak_rss_kib),
            ratio(m.peak_rss_kib as f64, floor_rss),
            calls_cell(m, warm.as_ref()),
        );
    }
    out.push_str(&own_work(functions, EXCHANGE_FLOOR));
    if let Some(pace) = pace {
        out.push_str(&own_work(functions, EXCHANGE_FLOOR_PACED));
        out.push_str(&pace_line(pace));
    }
    if verbose {
        for m in std::iter::once(floor).chain(functions) {
            out.push_str(&operations(m));
        }
    }
    out
}

/// claim-intake's CPU above that of `floor` (`exchange-floor`, paced or not): what its own
/// work costs (parsing, validation, JSON, logs, metrics), once the exchanges it needs are
/// paid.
fn own_work(functions: &[Measurement], floor: &str) -> String {
    let find = |name: &str| functions.iter().find(|m| m.name == name);
    let (Some(exchanges), Some(claim)) = (find(floor), find("claim-intake")) else {
        return String::new();
    };
    let (Some(exchanges_warm), Some(claim_warm)) = (warm(&exchanges.warm), warm(&claim.warm))
    else {
        return String::new();
    };
    format!(
        "\nclaim-intake above {floor} (its own work, the exchanges paid): first request {:+.2} ms of CPU ({:.2} against {:.2}), warm p50 {:+.2} ms ({:.2} against {:.2})\n",
        ms(claim.first.cpu) - ms(exchanges.first.cpu),
        ms(claim.first.cpu),
        ms(exchanges.first.cpu),
        ms(claim_warm.cpu_p50) - ms(exchanges_warm.cpu_p50),
        ms(claim_warm.cpu_p50),
        ms(exchanges_warm.cpu_p50),
    )
}

fn pace_line(pace: &BTreeMap<String, Duration>) -> String {
    let times: Vec<String> = pace
        .iter()
        .map(|(operation, time)| format!("{operation} {:.1} ms", ms(*time)))
        .collect();
    format!(
        "\n{EXCHANGE_FLOOR_PACED}: each AWS call answered after the emulators' median answer time for claim-intake ({}; Intent, the simulator in this process, at once)\n",
        times.join(", ")
    )
}

/// One function's AWS calls by operation: at start, first request, warm median.
fn operations(m: &Measurement) -> String {
    let warm = warm(&m.warm);
    let names: BTreeSet<&String> = m
        .init_calls
        .calls
        .keys()
        .chain(m.first.calls.calls.keys())
        .chain(m.warm.iter().flat_map(|s| s.calls.calls.keys()))
        .collect();
    let mut out = format!(
        "\n{}: AWS calls by operation ({} warm requests)\n\n| operation | at start | 1st request | warm p50 |\n| --- | ---: | ---: | ---: |\n",
        m.name,
        m.warm.len()
    );
    if names.is_empty() {
        out.push_str("| (none) | | | |\n");
    }
    for name in names {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            m.init_calls.calls.get(name).copied().unwrap_or(0),
            m.first.calls.calls.get(name).copied().unwrap_or(0),
            warm.as_ref()
                .and_then(|w| w.by_operation_p50.get(name).copied())
                .unwrap_or(0),
        );
    }
    let errors: BTreeMap<&String, u64> = m
        .init_calls
        .errors
        .iter()
        .chain(&m.first.calls.errors)
        .chain(m.warm.iter().flat_map(|s| &s.calls.errors))
        .fold(BTreeMap::new(), |mut all, (name, count)| {
            *all.entry(name).or_default() += count;
            all
        });
    for (name, count) in errors {
        let _ = writeln!(out, "\nanswered with an error: {name}, {count} time(s)");
    }
    let _ = writeln!(
        out,
        "\npage faults: {} at start, {} in the first request, {} in a warm one (p50)",
        m.init_cpu.page_faults,
        m.first.page_faults,
        warm.as_ref().map_or(0, |w| w.page_faults_p50)
    );
    let ticks = m.total_cpu.ticks;
    let _ = writeln!(
        out,
        "\nCPU over the whole run: {:.1} ms by the process's CPU clock, {ticks} ticks in /proc/{{pid}}/stat",
        ms(m.total_cpu.cpu)
    );
    out
}

fn calls_json(calls: &CallCounts) -> Value {
    json!({"total": calls.total(), "byOperation": calls.calls, "errors": calls.errors})
}

fn measurement_json(m: &Measurement, floor: &Measurement) -> Value {
    let warm = warm(&m.warm);
    let ratio = |value: f64, floor: f64| (floor > 0.0).then(|| round(value / floor, 2));
    json!({
        "name": m.name,
        "binaryBytes": m.binary_bytes,
        "init": {
            "wallMs": round(ms(m.init_wall), 3),
            "cpuMs": round(ms(m.init_cpu.cpu), 3),
            "cpuTicks": m.init_cpu.ticks,
            "pageFaults": m.init_cpu.page_faults,
            "awsCalls": calls_json(&m.init_calls),
        },
        "firstRequest": {
            "wallMs": round(ms(m.first.wall), 3),
            "cpuMs": round(ms(m.first.cpu), 3),
            "cpuTicks": m.first.ticks,
            "pageFaults": m.first.page_faults,
            "awsCalls": calls_json(&m.first.calls),
        },
        "warmRequests": warm.as_ref().map(|w| json!({
            "count": m.warm.len(),
            "wallMsP50": round(ms(w.wall_p50), 3),
            "wallMsP90": round(ms(w.wall_p90), 3),
            "cpuMsP50": round(ms(w.cpu_p50), 3),
            "cpuMsMean": round(ms(w.cpu_mean), 3),
            "cpuTicksTotal": w.ticks_total,
            "pageFaultsP50": w.page_faults_p50,
            "awsCallsP50": w.calls_p50,
            "awsCallsMin": w.calls_min,
            "awsCallsMax": w.calls_max,
            "awsCallsByOperationP50": w.by_operation_p50,
        })),
        "peakRssKib": m.peak_rss_kib,
        "totalCpu": {"ms": round(ms(m.total_cpu.cpu), 3), "ticks": m.total_cpu.ticks},
        "vsFloor": {
            "initCpu": ratio(ms(m.init_cpu.cpu), ms(floor.init_cpu.cpu)),
            "peakRss": ratio(m.peak_rss_kib as f64, floor.peak_rss_kib as f64),
            "binary": ratio(m.binary_bytes as f64, floor.binary_bytes as f64),
        },
    })
}

pub fn json(
    floor: &Measurement,
    functions: &[Measurement],
    context: Value,
    heavy: Vec<Value>,
) -> Value {
    json!({
        "context": context,
        "floor": measurement_json(floor, floor),
        "functions": functions.iter().map(|m| measurement_json(m, floor)).collect::<Vec<_>>(),
        "heavy": heavy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median([3, 1, 2]), Some(2));
        assert_eq!(median([4, 1, 3, 2]), Some(3));
        assert_eq!(median(Vec::<u32>::new()), None);
        assert_eq!(percentile(1..=10, 0.9), Some(9));
        assert_eq!(percentile([5], 0.9), Some(5));
    }

    #[test]
    fn the_pace_is_each_operations_median_answer_time() {
        let pace = median_latencies(BTreeMap::from([
            (
                "dynamodb:TransactWriteItems".to_string(),
                vec![
                    Duration::from_millis(9),
                    Duration::from_millis(4),
                    Duration::from_millis(5),
                ],
            ),
            (
                "events:PutEvents".to_string(),
                vec![Duration::from_micros(1500)],
            ),
            ("s3:GetObject".to_string(), vec![]),
        ]));
        assert_eq!(
            pace,
            BTreeMap::from([
                (
                    "dynamodb:TransactWriteItems".to_string(),
                    Duration::from_millis(5)
                ),
                ("events:PutEvents".to_string(), Duration::from_micros(1500)),
            ])
        );
        assert_eq!(
            pace_json(&pace),
            json!({"dynamodb:TransactWriteItems": 5.0, "events:PutEvents": 1.5})
        );
    }
}
