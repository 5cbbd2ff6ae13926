//! One function's execution environment: its release binary as a child process, pointed
//! at a Runtime API of its own, its logs in files, its CPU time and memory read from the
//! outside.
//!
//! CPU time comes from two sources. `/proc/<pid>/stat` (utime + stime) counts in clock
//! ticks (`CLK_TCK`, 100 per second: 10 ms steps), too coarse for a start that takes a few
//! milliseconds; the process's CPU-time clock (`clock_getcpuclockid`, all threads, exited
//! ones included) counts in nanoseconds. The table uses the clock; both are kept, and the
//! ticks check the clock over a whole run.

use crate::error::{Context, Error, Result, bail};
use crate::proxy::{CallCounts, Counter};
use crate::runtime_api::{Invocation, Notice, RuntimeApi};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to start one function, as Lambda would.
pub struct FunctionSpec {
    /// The name in the table (the binary's, for the functions).
    pub name: String,
    pub binary: PathBuf,
    /// `MemorySize` in template.yaml (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: u32,
    /// `Timeout` in template.yaml: the deadline of each invocation.
    pub timeout: Duration,
    /// The whole environment (the bench's own is not inherited).
    pub env: Vec<(String, String)>,
}

/// A point in the child's life: when, and how much CPU it had used by then.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pub cpu: Duration,
    pub ticks: u64,
    /// Page faults so far (minor and major: `/proc/<pid>/stat` fields 10 and 12): the
    /// code and data a process touches for the first time.
    pub page_faults: u64,
}

/// One invocation, from the event handed out to the function's next `GET …/next`.
#[derive(Debug, Clone)]
pub struct RequestSample {
    /// Event handed out → response posted.
    pub wall: Duration,
    /// CPU used from the event handed out until the function asked for the next one.
    pub cpu: Duration,
    pub ticks: u64,
    pub page_faults: u64,
    /// AWS calls made in that window.
    pub calls: CallCounts,
}

pub struct Measurement {
    pub name: String,
    pub binary_bytes: u64,
    /// Process spawned → its first `GET …/next`.
    pub init_wall: Duration,
    pub init_cpu: CpuSample,
    /// AWS calls made during the start.
    pub init_calls: CallCounts,
    pub first: RequestSample,
    pub warm: Vec<RequestSample>,
    /// VmHWM at the end.
    pub peak_rss_kib: u64,
    /// CPU over the whole run, by the clock and by the ticks (the cross-check).
    pub total_cpu: CpuSample,
}

/// What a function must answer for an invocation to count as a success.
pub type Check<'a> = dyn Fn(&serde_json::Value) -> Result<()> + Send + Sync + 'a;

/// Bounds how long the bench waits for one step of a function (its start, one answer).
pub struct Limits {
    pub step_timeout: Duration,
}

/// Runs `spec` on `events` (the first one is the cold request, the rest the warm ones) and
/// measures it. Every answer goes through `check`; a failed check, an `/error` post, a
/// failed start, a crash or a timeout ends the run with an error that names the function,
/// the request and the tail of its logs.
pub async fn measure(
    spec: &FunctionSpec,
    events: Vec<Vec<u8>>,
    check: &Check<'_>,
    counter: &Arc<Counter>,
    logs: &Path,
    limits: &Limits,
) -> Result<Measurement> {
    let binary_bytes = std::fs::metadata(&spec.binary)
        .with_context(|| format!("{}: no binary at {}", spec.name, spec.binary.display()))?
        .len();
    let api = RuntimeApi::start(&spec.name).await?;
    let stdout_path = logs.join(format!("{}.stdout.log", spec.name));
    let stderr_path = logs.join(format!("{}.stderr.log", spec.name));
    let stdout = std::fs::File::create(&stdout_path)
        .with_context(|| format!("creating {}", stdout_path.display()))?;
    let stderr = std::fs::File::create(&stderr_path)
        .with_context(|| format!("creating {}", stderr_path.display()))?;
    // std's process, not tokio's: tokio's `process` feature would be unified into the
    // functions' own build (the same cargo invocation) and change their binaries.
    let mut command = std::process::Command::new(&spec.binary);
    command
        .env_clear()
        .envs(lambda_environment(spec, &api))
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(logs)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);

    let calls_before_start = counter.snapshot();
    let spawned_at = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("{}: starting {}", spec.name, spec.binary.display()))?;
    let pid = child.id();
    let mut env = Environment {
        name: spec.name.clone(),
        api,
        child,
        clock: CpuClock::of(pid),
        pid,
        stdout_path,
        stderr_path,
        timeout: limits.step_timeout,
    };

    let ready_at = env.wait_idle("starting").await?;
    let init_cpu = env.sample()?;
    let init_calls = counter.snapshot().since(&calls_before_start);
    let mut samples = Vec::with_capacity(events.len());
    let count = events.len();
    for (index, payload) in events.into_iter().enumerate() {
        let what = format!("request {} of {count}", index + 1);
        let before = env.sample()?;
        let calls_before = counter.snapshot();
        let request_id = uuid::Uuid::new_v4().to_string();
        let sent_at = Instant::now();
        env.api
            .invoke(Invocation {
                request_id: request_id.clone(),
                payload,
                timeout: spec.timeout,
            })
            .await?;
        let (answered_at, body) = env.wait_answer(&request_id, &what).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| env.failure(&format!("{what}: the answer is not JSON ({e})")))?;
        check(&answer).map_err(|e| env.failure(&format!("{what} failed: {e}")))?;
        env.wait_idle(&format!("{what} (waiting for its next GET /next)"))
            .await?;
        let after = env.sample()?;
        samples.push(RequestSample {
            wall: answered_at - sent_at,
            cpu: after.cpu.saturating_sub(before.cpu),
            ticks: after.ticks.saturating_sub(before.ticks),
            page_faults: after.page_faults.saturating_sub(before.page_faults),
            calls: counter.snapshot().since(&calls_before),
        });
    }
    let total_cpu = env.sample()?;
    let peak_rss_kib = vm_hwm_kib(pid).map_err(|e| env.failure(&e.to_string()))?;
    env.stop().await;
    let mut samples = samples.into_iter();
    let first = samples
        .next()
        .with_context(|| format!("{}: no request was made", spec.name))?;
    Ok(Measurement {
        name: spec.name.clone(),
        binary_bytes,
        init_wall: ready_at - spawned_at,
        init_cpu,
        init_calls,
        first,
        warm: samples.collect(),
        peak_rss_kib,
        total_cpu,
    })
}

/// What the Lambda service sets in every execution environment (`provided.al2023`).
fn lambda_environment(spec: &FunctionSpec, api: &RuntimeApi) -> Vec<(String, String)> {
    let name = &spec.name;
    [
        ("AWS_LAMBDA_RUNTIME_API", api.address.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/28/[$LATEST]lambdabench".into(),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("_HANDLER", "bootstrap".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("TZ", ":UTC".into()),
        ("LANG", "en_US.UTF-8".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

struct Environment {
    name: String,
    api: RuntimeApi,
    child: std::process::Child,
    clock: Result<CpuClock>,
    pid: u32,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    timeout: Duration,
}

impl Environment {
    fn sample(&self) -> Result<CpuSample> {
        let stat = read_stat(self.pid).map_err(|e| self.failure(&e.to_string()))?;
        let ticks = stat.ticks;
        let cpu = match &self.clock {
            Ok(clock) => clock.read().map_err(|e| self.failure(&e.to_string()))?,
            // Without the clock (not Linux-like), the ticks are all there is.
            Err(_) => Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64),
        };
        Ok(CpuSample {
            cpu,
            ticks,
            page_faults: stat.page_faults,
        })
    }

    async fn next_notice(&mut self, what: &str) -> Result<Notice> {
        tokio::select! {
            notice = self.api.notices.recv() => {
                notice.ok_or_else(|| self.failure(&format!("{what}: the Runtime API stopped")))
            }
            status = exited(&mut self.child) => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                Err(self.failure(&format!("{what}: the process exited ({status})")))
            }
            _ = tokio::time::sleep(self.timeout) => {
                Err(self.failure(&format!("{what}: nothing after {} s", self.timeout.as_secs())))
            }
        }
    }

    /// Waits until the function asks for its next event (it is then idle, blocked on it).
    async fn wait_idle(&mut self, what: &str) -> Result<Instant> {
        match self.next_notice(what).await? {
            Notice::Next { at } => Ok(at),
            Notice::InitError { body, .. } => Err(self.failure(&format!(
                "{what}: the function reported an init error: {}",
                String::from_utf8_lossy(&body)
            ))),
            Notice::Response { request_id, .. } | Notice::Error { request_id, .. } => Err(self
                .failure(&format!(
                    "{what}: an answer to {request_id}, which was not pending"
                ))),
        }
    }

    /// Waits for the answer to `request_id`: its time and body, or the error it posted.
    async fn wait_answer(&mut self, request_id: &str, what: &str) -> Result<(Instant, Vec<u8>)> {
        match self.next_notice(what).await? {
            Notice::Response {
                request_id: id,
                at,
                body,
            } if id == request_id => Ok((at, body.to_vec())),
            Notice::Error { body, .. } => Err(self.failure(&format!(
                "{what}: the function posted an invocation error: {}",
                String::from_utf8_lossy(&body)
            ))),
            Notice::InitError { body, .. } => Err(self.failure(&format!(
                "{what}: the function reported an init error: {}",
                String::from_utf8_lossy(&body)
            ))),
            Notice::Next { .. } => Err(self.failure(&format!(
                "{what}: the function asked for another event without answering this one"
            ))),
            Notice::Response { request_id: id, .. } => {
                Err(self.failure(&format!("{what}: an answer to {id}, not to {request_id}")))
            }
        }
    }

    /// An error naming the function, with the tail of its logs.
    fn failure(&self, what: &str) -> Error {
        let tail = |path: &Path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(15);
            lines[start..]
                .iter()
                .map(|line| format!("    {line}\n"))
                .collect::<String>()
        };
        Error::msg(format!(
            "{}: {what}\n  last lines of its stderr ({}):\n{}  last lines of its stdout ({}):\n{}",
            self.name,
            self.stderr_path.display(),
            tail(&self.stderr_path),
            self.stdout_path.display(),
            tail(&self.stdout_path),
        ))
    }

    /// Ends the child as Lambda ends an environment with an extension: `SIGTERM`, then
    /// (on drop) `SIGKILL`. A profiler wrapped around the function (`--bin-dir` with a
    /// `valgrind` script) writes its profile on `SIGTERM`; a function exits at once.
    async fn stop(mut self) {
        // SAFETY: `kill` on our own child's pid, which is not reaped until the drop below.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), exited(&mut self.child)).await;
        // Dropped: killed (if still there) and reaped.
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resolves when the child exits (polled: the bench spends no thread on it).
async fn exited(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The process's CPU-time clock (all its threads), in nanoseconds.
struct CpuClock(libc::clockid_t);

impl CpuClock {
    fn of(pid: u32) -> Result<Self> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `clock` is a valid place for the result; the call reads nothing else.
        let code = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
        if code != 0 {
            bail!(
                "no CPU-time clock for process {pid}: {}",
                std::io::Error::from_raw_os_error(code)
            );
        }
        Ok(Self(clock))
    }

    fn read(&self) -> Result<Duration> {
        let mut time = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `time` is a valid timespec to write to.
        let code = unsafe { libc::clock_gettime(self.0, &mut time) };
        if code != 0 {
            bail!(
                "reading the process's CPU-time clock: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(Duration::new(time.tv_sec as u64, time.tv_nsec as u32))
    }
}

/// `CLK_TCK`: the unit of `/proc/<pid>/stat`'s times.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// What the bench reads from `/proc/<pid>/stat`.
struct Stat {
    /// utime + stime (fields 14 and 15), in clock ticks.
    ticks: u64,
    /// minflt + majflt (fields 10 and 12).
    page_faults: u64,
}

fn read_stat(pid: u32) -> Result<Stat> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command (field 2) is in parentheses and may hold spaces: count after its end.
    let after_command = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: no command field"))?;
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    // fields[0] is field 3 (state).
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{path}: no field {n}"))
    };
    Ok(Stat {
        ticks: field(14)? + field(15)?,
        page_faults: field(10)? + field(12)?,
    })
}

/// VmHWM (peak resident set size) of `/proc/<pid>/status`, in KiB.
fn vm_hwm_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("{path}: no VmHWM line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_function_that_dies_at_start_is_named_with_the_tail_of_its_stderr() {
        use std::os::unix::fs::PermissionsExt;
        let logs = std::env::temp_dir().join(format!(
            "lambda-bench-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&logs).unwrap();
        let script = logs.join("bootstrap");
        std::fs::write(
            &script,
            "#!/bin/sh\necho 'TABLE_NAME is required' >&2\nexit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let spec = FunctionSpec {
            name: "broken".into(),
            binary: script,
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            env: vec![],
        };
        let error = measure(
            &spec,
            vec![b"{}".to_vec()],
            &|_| Ok(()),
            &Arc::new(Counter::default()),
            &logs,
            &Limits {
                step_timeout: Duration::from_secs(10),
            },
        )
        .await
        .err()
        .expect("a failure");
        let message = error.to_string();
        assert!(
            message.starts_with("broken: starting: the process exited (exit status: 3)"),
            "{message}"
        );
        assert!(message.contains("TABLE_NAME is required"), "{message}");
        std::fs::remove_dir_all(&logs).ok();
    }

    #[test]
    fn this_process_has_cpu_ticks_a_cpu_clock_and_a_peak_rss() {
        let pid = std::process::id();
        // Spinning moves the process's CPU clock on by 20 ms, however loaded the machine
        // (its wall time is not what is measured: a busy machine gives it less CPU).
        let clock = CpuClock::of(pid).unwrap();
        let before = clock.read().unwrap();
        let started = Instant::now();
        let mut spin = 0u64;
        while clock.read().unwrap() < before + Duration::from_millis(20)
            && started.elapsed() < Duration::from_secs(60)
        {
            for _ in 0..10_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
        }
        assert!(spin > 0);
        assert!(clock.read().unwrap() >= before + Duration::from_millis(20));
        let before = read_stat(pid).unwrap();
        let touched = vec![1u8; 8 << 20];
        assert_eq!(touched.iter().map(|&b| b as u64).sum::<u64>(), 8 << 20);
        let after = read_stat(pid).unwrap();
        assert!(
            after.page_faults > before.page_faults,
            "8 MiB touched for the first time fault pages in"
        );
        assert!(vm_hwm_kib(pid).unwrap() > 0);
    }
}
