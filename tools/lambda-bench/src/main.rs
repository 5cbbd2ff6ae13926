//! `lambda-bench`: the four Lambda functions measured from the outside, the way AWS runs
//! them, next to a hello-world `lambda_runtime` binary built in the same run (the floor).
//!
//! Each release binary runs as a child process against a Lambda Runtime API served here on
//! loopback, with template.yaml's environment; its AWS calls go through a counting proxy in
//! front of DynamoDB Local and moto, Intent is the simulator, Intent's client secret is in
//! moto's Secrets Manager. Per function: start (spawn → first `GET /next`) CPU and wall
//! time, the first request's, the warm requests' medians, peak RSS, binary size and AWS
//! calls per request. Beside the hello-world floor, `exchange-floor` makes a claim's HTTP
//! exchanges and nothing else, against a sink that answers at once; after claim-intake it
//! runs again with each AWS call answered after the emulators' median answer time for the
//! claim (`exchange-floor, paced`), since on this kind of machine waiting costs CPU too.
//! Then the two heavy benchmarks of `system-tests`.
//!
//! Needs the emulators: `infra/scripts/emulators.sh start && eval "$(infra/scripts/emulators.sh env)"`,
//! then `cargo run --release -p lambda-bench [-- --help]`.

mod child;
mod error;
mod proxy;
mod report;
mod runtime_api;
mod scenario;
mod sink;

use child::{Check, FunctionSpec, Limits, Measurement};
use clap::Parser;
use error::{Context, Result, bail};
use proxy::{Counter, Proxy};
use scenario::{DIRECT_DROP_PREFIX, Function, Resources};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

/// The functions' packages (each has one binary of the same name), built on their own in
/// one release build, as they are deployed. Built in the same cargo invocation as this
/// crate, they would get the features its dependencies turn on (cargo unifies features
/// across the packages of one build: `system-tests` brings `local-bridge`, which turns on
/// `axum`'s `form` and `multipart`, and `tempfile`, which turns on `bitflags/std`), and
/// would no longer be the binaries AWS runs.
const BUILD_FUNCTIONS: &[&str] = &[
    "build",
    "--release",
    "-p",
    "claim-intake",
    "-p",
    "intervention-closure",
    "-p",
    "document-forwarder",
    "-p",
    "oncall-closer",
    "-p",
    "exchange-floor",
    "--bins",
];

/// This crate's binaries: the floor (`hello-lambda`) and the bench itself. The second
/// floor, `exchange-floor` (a claim's HTTP exchanges and nothing else), is built with the
/// functions above: on their HTTP client and signer, with their features.
const BUILD_BENCH: &[&str] = &["build", "--release", "-p", "lambda-bench", "--bins"];

/// The heavy benchmarks (`system-tests` binaries), with their default arguments: 10,000
/// stragglers with 50 ms of Intent latency, 50 at a time; a 1 MB and a 200 MB quitus.
const HEAVY: &[(&str, &str)] = &[
    (
        "closer-bench",
        "closing 10,000 stragglers, 50 ms Intent latency, 50 at a time",
    ),
    (
        "forward-memory-bench",
        "forwarding a 1 MB and a 200 MB quitus (peak RSS of the whole process)",
    ),
];

/// The second floor's binary (package `tools/exchange-floor`).
pub(crate) const EXCHANGE_FLOOR: &str = "exchange-floor";

/// The second floor again, its exchanges answered as slowly as the emulators answered
/// claim-intake's (measured when claim-intake is).
pub(crate) const EXCHANGE_FLOOR_PACED: &str = "exchange-floor, paced";

const EMULATORS_HINT: &str = "start the emulators first: infra/scripts/emulators.sh start && eval \"$(infra/scripts/emulators.sh env)\"";

/// Measures the four Lambda functions as AWS runs them (child processes on a local Lambda
/// Runtime API), next to a hello-world lambda_runtime binary; then runs the heavy
/// benchmarks. The table goes to stdout, progress and the functions' logs elsewhere.
#[derive(Parser, Debug)]
#[command(name = "lambda-bench")]
struct Args {
    /// Warm requests per function (after the first one); their medians are reported.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    requests: u32,
    /// Use the binaries already in the target directory (no cargo build).
    #[arg(long)]
    no_build: bool,
    /// Skip closer-bench and forward-memory-bench.
    #[arg(long)]
    skip_heavy: bool,
    /// Print one JSON document instead of the markdown table.
    #[arg(long)]
    json: bool,
    /// Break the AWS calls down by operation, per function.
    #[arg(long, short)]
    verbose: bool,
    /// Only these functions (comma-separated binary names); the floor always runs.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Key prefix of the quitus dropped for the document forwarder.
    #[arg(long, default_value = DIRECT_DROP_PREFIX)]
    quitus_prefix: String,
    /// Size of each quitus PDF, in bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    pdf_bytes: usize,
    /// Longest wait for one step of a function (its start, one answer), in seconds.
    #[arg(long, default_value_t = 60)]
    step_timeout: u64,
    /// Where the release binaries are (default: the workspace's target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Keep the functions' logs (they are kept anyway when something fails).
    #[arg(long)]
    keep_logs: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lambda-bench: no tokio runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lambda-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn release_dir(args: &Args) -> PathBuf {
    if let Some(dir) = &args.bin_dir {
        return dir.clone();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("release")
}

/// Runs cargo with `arguments` at the workspace's root, its output on stderr.
fn cargo(arguments: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("lambda-bench: {cargo} {}", arguments.join(" "));
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating stderr")?;
    let status = std::process::Command::new(&cargo)
        .args(arguments)
        .current_dir(workspace_root())
        .stdout(Stdio::from(stdout))
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("{cargo} {} failed ({status})", arguments.join(" "));
    }
    Ok(())
}

/// The emulators' endpoints, from the environment `emulators.sh env` exports, checked to
/// answer.
async fn emulator_endpoints() -> Result<(String, String)> {
    let variable = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .with_context(|| format!("{name} is not set: {EMULATORS_HINT}"))
    };
    let dynamodb = variable("AWS_ENDPOINT_URL_DYNAMODB")?;
    let moto = variable("AWS_ENDPOINT_URL")?;
    for (name, url) in [("DynamoDB Local", &dynamodb), ("moto", &moto)] {
        let address = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect(&address),
        )
        .await
        .map_err(|_| error::Error::msg("timed out"))
        .and_then(|connected| connected.map_err(|e| error::Error::msg(e.to_string())))
        .with_context(|| format!("{name} does not answer at {url} ({EMULATORS_HINT})"))?;
    }
    Ok((dynamodb, moto))
}

struct World {
    sdk: aws_config::SdkConfig,
    resources: Resources,
    counter: Arc<Counter>,
    /// Kept alive for the whole run.
    _simulator: intent_simulator::IntentSimulator,
    _proxies: (Proxy, Proxy),
    /// Where `exchange-floor`'s exchanges go.
    sink: sink::Sink,
    /// AWS credentials, region and endpoints (the proxies) of every function.
    aws_env: Vec<(String, String)>,
}

/// The table, bus, bucket and Intent secret of this run (created directly on the
/// emulators, not through the proxy), the Intent simulator and the counting proxies.
async fn set_up() -> Result<World> {
    let (dynamodb_url, moto_url) = emulator_endpoints().await?;
    let sdk = system_tests::sdk_config().await;
    let simulator = intent_simulator::IntentSimulator::start(Default::default())
        .await
        .context("starting the Intent simulator")?;
    let table = system_tests::unique("lambda-bench");
    system_tests::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    let bus = system_tests::unique("lambda-bench");
    // A bus without rules: the functions' PutEvents are measured, not moto's routing.
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .map_err(|e| aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
        .context("creating the event bus on moto")?;
    let bucket = system_tests::create_versioned_bucket(&system_tests::s3_client(&sdk)).await;
    let secret_arn = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(system_tests::unique("lambda-bench-intent"))
        .secret_string(simulator.client_secret())
        .send()
        .await
        .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string())
        .context("creating Intent's client secret in moto's Secrets Manager")?
        .arn()
        .context("the new secret has no ARN")?
        .to_string();
    let counter = Arc::new(Counter::default());
    let dynamodb_proxy = Proxy::start(&dynamodb_url, counter.clone()).await?;
    let moto_proxy = Proxy::start(&moto_url, counter.clone()).await?;
    let sink = sink::Sink::start(counter.clone()).await?;
    let from_env = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let region = from_env("AWS_REGION", "eu-west-3");
    let aws_env = vec![
        (
            "AWS_ACCESS_KEY_ID".into(),
            from_env("AWS_ACCESS_KEY_ID", "test"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            from_env("AWS_SECRET_ACCESS_KEY", "test"),
        ),
        // Lambda's credentials are a role's: temporary, with a session token.
        ("AWS_SESSION_TOKEN".into(), "lambda-bench-session".into()),
        ("AWS_REGION".into(), region.clone()),
        ("AWS_DEFAULT_REGION".into(), region),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_ENDPOINT_URL".into(), moto_proxy.url.clone()),
        (
            "AWS_ENDPOINT_URL_DYNAMODB".into(),
            dynamodb_proxy.url.clone(),
        ),
    ];
    let resources = Resources {
        table,
        bus,
        bucket,
        secret_arn,
        intent_base_url: simulator.base_url(),
        intent_token_url: simulator.token_url(),
        intent_client_id: simulator.client_id(),
    };
    Ok(World {
        sdk,
        resources,
        counter,
        _simulator: simulator,
        _proxies: (dynamodb_proxy, moto_proxy),
        sink,
        aws_env,
    })
}

struct Bench<'a> {
    args: &'a Args,
    world: &'a World,
    bin_dir: PathBuf,
    logs: PathBuf,
    limits: Limits,
}

impl Bench<'_> {
    fn spec(&self, function: Function) -> FunctionSpec {
        let (memory_mb, timeout) = function.memory_and_timeout();
        let mut env = self.world.aws_env.clone();
        env.extend(function.environment(&self.world.resources));
        FunctionSpec {
            name: function.binary().to_string(),
            binary: self.bin_dir.join(function.binary()),
            memory_mb,
            timeout,
            env,
        }
    }

    fn requests(&self) -> usize {
        self.args.requests as usize + 1
    }

    async fn measure(
        &self,
        spec: &FunctionSpec,
        events: Vec<Vec<u8>>,
        check: &Check<'_>,
    ) -> Result<Measurement> {
        eprintln!("lambda-bench: {} ({} requests)", spec.name, events.len());
        child::measure(
            spec,
            events,
            check,
            &self.world.counter,
            &self.logs,
            &self.limits,
        )
        .await
    }

    async fn floor(&self) -> Result<Measurement> {
        let spec = FunctionSpec {
            name: "hello-lambda".into(),
            binary: self.bin_dir.join("hello-lambda"),
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            env: self.world.aws_env.clone(),
        };
        let events = (0..self.requests())
            .map(scenario::hello_event)
            .collect::<Result<_>>()?;
        self.measure(&spec, events, &scenario::check_hello).await
    }

    /// The second floor: a claim's HTTP exchanges, made by `exchange-floor` against the
    /// sink, with the functions' HTTP client and signer, and nothing else; `name` in the
    /// table.
    async fn exchange_floor(&self, name: &str) -> Result<Measurement> {
        let mut env = self.world.aws_env.clone();
        env.extend(self.world.sink.environment(scenario::claim_body_sizes()));
        let spec = FunctionSpec {
            name: name.into(),
            binary: self.bin_dir.join(EXCHANGE_FLOOR),
            memory_mb: 128,
            timeout: Duration::from_secs(10),
            env,
        };
        let events = (0..self.requests())
            .map(scenario::hello_event)
            .collect::<Result<_>>()?;
        self.measure(&spec, events, &scenario::check_exchanges)
            .await
    }

    async fn intake(&self) -> Result<Measurement> {
        let events = (0..self.requests())
            .map(scenario::claim_event)
            .collect::<Result<_>>()?;
        self.measure(&self.spec(Function::ClaimIntake), events, &|answer| {
            scenario::check_api_answer(answer, 201)
        })
        .await
    }

    async fn closure(&self) -> Result<Measurement> {
        let events = (0..self.requests())
            .map(scenario::closure_event)
            .collect::<Result<_>>()?;
        self.measure(
            &self.spec(Function::InterventionClosure),
            events,
            &|answer| scenario::check_api_answer(answer, 200),
        )
        .await
    }

    async fn forwarder(&self) -> Result<Measurement> {
        let s3 = system_tests::s3_client(&self.world.sdk);
        let pdf = system_tests::pdf_bytes(self.args.pdf_bytes);
        let mut events = Vec::with_capacity(self.requests());
        eprintln!(
            "lambda-bench: putting {} quitus of {} bytes under {}",
            self.requests(),
            pdf.len(),
            self.args.quitus_prefix
        );
        for n in 0..self.requests() {
            let key = scenario::quitus_key(&self.args.quitus_prefix, n);
            let object =
                system_tests::put_object(&s3, &self.world.resources.bucket, &key, pdf.clone(), &[])
                    .await;
            let event = serde_json::to_value(system_tests::s3_event(&[&object]))
                .context("serializing the S3 event")?;
            events.push(scenario::to_bytes(&event)?);
        }
        self.measure(&self.spec(Function::DocumentForwarder), events, &|answer| {
            scenario::check_forwarded(answer, &self.args.quitus_prefix)
        })
        .await
    }

    async fn closer(&self) -> Result<Measurement> {
        let events = (0..self.requests())
            .map(|_| scenario::resend_tick())
            .collect::<Result<_>>()?;
        self.measure(
            &self.spec(Function::OncallCloser),
            events,
            &scenario::check_tick,
        )
        .await
    }
}

/// Runs a `system-tests` benchmark binary (with the emulators' environment) and returns
/// its result lines.
async fn heavy(bin_dir: &Path, logs: &Path, binary: &str) -> Result<Vec<String>> {
    let path = bin_dir.join(binary);
    let stderr_path = logs.join(format!("{binary}.stderr.log"));
    let stderr = std::fs::File::create(&stderr_path)
        .with_context(|| format!("creating {}", stderr_path.display()))?;
    eprintln!("lambda-bench: {binary}");
    let mut command = std::process::Command::new(&path);
    command.stdin(Stdio::null()).stderr(stderr);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("waiting for a benchmark")?
        .with_context(|| format!("running {}", path.display()))?;
    if !output.status.success() {
        let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        bail!(
            "{binary} failed ({}); last lines of {}:\n{}",
            output.status,
            stderr_path.display(),
            lines[lines.len().saturating_sub(15)..].join("\n")
        );
    }
    // The result lines; not the JSON log lines (the closer's metrics) that precede them.
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| serde_json::from_str::<serde_json::Value>(line).is_err())
        .map(str::to_string)
        .collect())
}

async fn run(args: Args) -> Result<()> {
    let selected: Vec<Function> = if args.only.is_empty() {
        Function::ALL.to_vec()
    } else {
        let mut selected = Vec::new();
        for name in &args.only {
            let function = Function::parse(name.trim()).with_context(|| {
                format!(
                    "--only: no function {name:?} (one of {})",
                    Function::ALL.map(Function::binary).join(", ")
                )
            })?;
            selected.push(function);
        }
        Function::ALL
            .into_iter()
            .filter(|f| selected.contains(f))
            .collect()
    };
    // Checked before a long build.
    emulator_endpoints().await?;
    if !args.no_build {
        cargo(BUILD_FUNCTIONS)?;
        cargo(BUILD_BENCH)?;
        if !args.skip_heavy {
            let mut build = vec!["build", "--release", "-p", "system-tests"];
            for (binary, _) in HEAVY {
                build.extend(["--bin", binary]);
            }
            cargo(&build)?;
        }
    }
    let logs = std::env::temp_dir().join(format!("lambda-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let outcome = match snapshot_binaries(&args, &selected, &logs) {
        Ok(bin_dir) => measure_all(&args, &selected, &bin_dir, &logs).await,
        Err(error) => Err(error),
    };
    match &outcome {
        Err(_) => eprintln!(
            "lambda-bench: the functions' logs are in {}",
            logs.display()
        ),
        Ok(()) if args.keep_logs => {
            eprintln!(
                "lambda-bench: the functions' logs are in {}",
                logs.display()
            )
        }
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&logs);
        }
    }
    outcome
}

/// Copies the binaries to measure out of the target directory (into `work/bin`): another
/// build in the same target directory (a single package's, with other features) would
/// otherwise replace them during the run.
fn snapshot_binaries(args: &Args, selected: &[Function], work: &Path) -> Result<PathBuf> {
    let from = release_dir(args);
    let to = work.join("bin");
    std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
    let mut binaries = vec!["hello-lambda", EXCHANGE_FLOOR];
    binaries.extend(selected.iter().map(|f| f.binary()));
    if selected.contains(&Function::InterventionClosure)
        || selected.contains(&Function::DocumentForwarder)
    {
        // Opens the claims they need when it is not measured itself.
        binaries.push(Function::ClaimIntake.binary());
    }
    if !args.skip_heavy {
        binaries.extend(HEAVY.iter().map(|(binary, _)| *binary));
    }
    binaries.sort_unstable();
    binaries.dedup();
    for binary in binaries {
        let source = from.join(binary);
        std::fs::copy(&source, to.join(binary)).with_context(|| {
            format!(
                "copying {} (build it, or leave out --no-build)",
                source.display()
            )
        })?;
    }
    Ok(to)
}

async fn measure_all(
    args: &Args,
    selected: &[Function],
    bin_dir: &Path,
    logs: &Path,
) -> Result<()> {
    rustls_provider();
    let world = set_up().await?;
    let bench = Bench {
        args,
        world: &world,
        bin_dir: bin_dir.to_path_buf(),
        logs: logs.to_path_buf(),
        limits: Limits {
            step_timeout: Duration::from_secs(args.step_timeout),
        },
    };
    let floor = bench.floor().await?;
    let mut measured = vec![bench.exchange_floor(EXCHANGE_FLOOR).await?];
    // The emulators' median answer time per operation while claim-intake was measured.
    let mut claim_pace = None;
    for &function in selected {
        let measurement = match function {
            Function::ClaimIntake => {
                world.counter.take_latencies();
                let measurement = bench.intake().await?;
                claim_pace = Some(report::median_latencies(world.counter.take_latencies()));
                measurement
            }
            Function::InterventionClosure => {
                if !selected.contains(&Function::ClaimIntake) {
                    eprintln!(
                        "lambda-bench: opening the claims to close (claim-intake, not measured)"
                    );
                    bench.intake().await?;
                }
                bench.closure().await?
            }
            Function::DocumentForwarder => {
                if !selected.contains(&Function::ClaimIntake)
                    && !selected.contains(&Function::InterventionClosure)
                {
                    eprintln!(
                        "lambda-bench: opening the claims the quitus belong to (claim-intake, not measured)"
                    );
                    bench.intake().await?;
                }
                bench.forwarder().await?
            }
            Function::OncallCloser => bench.closer().await?,
        };
        check_clocks(&measurement);
        measured.push(measurement);
    }
    check_clocks(&floor);
    if let Some(pace) = &claim_pace {
        world.sink.pace(pace.clone());
        let paced = bench.exchange_floor(EXCHANGE_FLOOR_PACED).await?;
        world.sink.pace(Default::default());
        check_clocks(&paced);
        measured.insert(1, paced);
    }

    let mut heavy_results = Vec::new();
    if !args.skip_heavy {
        for (binary, what) in HEAVY {
            let lines = heavy(bin_dir, logs, binary).await?;
            heavy_results.push((binary, what, lines));
        }
    }

    if args.json {
        let context = serde_json::json!({
            "warmRequests": args.requests,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "clockTicksPerSecond": child::clock_ticks_per_second(),
            "quitusPrefix": args.quitus_prefix,
            "pdfBytes": args.pdf_bytes,
            "closerTick": "resend",
            "claimPaceMs": claim_pace.as_ref().map(report::pace_json),
        });
        let heavy = heavy_results
            .iter()
            .map(|(binary, what, lines)| {
                serde_json::json!({"binary": binary, "what": what, "output": lines})
            })
            .collect();
        let document = report::json(&floor, &measured, context, heavy);
        println!(
            "{}",
            serde_json::to_string_pretty(&document).context("writing the JSON")?
        );
        return Ok(());
    }
    println!(
        "lambda-bench: 1 + {} requests per function on {} CPU(s); init = spawn → first GET /next; a request's wall = event handed out → response posted, its CPU = event handed out → next GET /next (each process's CPU-time clock); AWS calls counted by the proxy; document-forwarder: a {}-byte quitus under {}; oncall-closer: resend ticks\n",
        args.requests,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        args.pdf_bytes,
        args.quitus_prefix,
    );
    print!(
        "{}",
        report::markdown(&floor, &measured, claim_pace.as_ref(), args.verbose)
    );
    for (binary, what, lines) in heavy_results {
        println!("\n{binary} ({what}):\n");
        println!("```");
        for line in lines {
            println!("{line}");
        }
        println!("```");
    }
    Ok(())
}

/// reqwest (the proxy's client) is built without a default TLS provider.
fn rustls_provider() {
    system_tests::install_crypto_provider();
}

/// The CPU-time clock and the ticks of /proc/<pid>/stat should agree over a whole run
/// (within a couple of ticks); says so on stderr when they do not.
fn check_clocks(m: &Measurement) {
    let per_second = child::clock_ticks_per_second() as f64;
    let by_ticks = m.total_cpu.ticks as f64 / per_second;
    let by_clock = m.total_cpu.cpu.as_secs_f64();
    if (by_ticks - by_clock).abs() > 2.0 / per_second + 0.01 * by_clock {
        eprintln!(
            "lambda-bench: warning: {}: {:.1} ms of CPU by its clock, {:.1} ms by /proc/stat ticks",
            m.name,
            by_clock * 1000.0,
            by_ticks * 1000.0
        );
    }
}
