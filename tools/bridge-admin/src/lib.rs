//! `bridge-admin`, the operator's command: a file with its log and delivery states, what
//! waits for Intent and what Intent refused for good (oldest first), the redrive of what
//! it refused, and the replay of the document forwarder's dead-letter queue.
//!
//! The command runs on the DynamoDB table (`TABLE_NAME`, the standard AWS credential
//! chain and the functions' variables) or, with `--local DATA_DIR`, on the local run's
//! embedded store. Everything here writes to the `out` and `err` it is given and returns
//! the exit code, so tests run it on their own adapters:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done (also: nothing to do) |
//! | 1 | what was asked for is not there, or some items are not on Intent after a redrive / replay |
//! | 2 | usage or configuration error: a missing variable, no credentials, the store or queue unreachable |
//!
//! Errors are one line on `err` (`bridge-admin: …`). Nothing printed names a tenant: the
//! event pairs, dates, delivery states and errors of a file, and of a document its object
//! identity and size, never its file name, title, description, contact or address.

pub mod dlq;
mod render;
mod settings;

use clap::{ArgGroup, Parser, Subcommand};
use intent_client::IntentClient;
use local_bridge::events::JsonLinesEvents;
use local_bridge::inbox::InboxObjects;
use local_bridge::store::EmbeddedStore;
use oncall_domain::delivery::Deadline;
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::model::FileId;
use oncall_domain::ports::{
    Clock, DocumentLedger, FinishDelivery, ListPendingEvents, LoadFile, OperatorClock, Outbox,
    PublishDocument, PublishDomainEvents, PublishToIntent, ReadObject, RecordDelivery, StoreError,
    UploadGrants,
};
use oncall_domain::redrive::{
    OperatorStore, RedriveError, RedrivePorts, RedriveScope, failed_events, pending_events,
    redrive, sort_documents, view_file,
};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use settings::Lookup;

/// Done, or nothing to do.
pub const EXIT_OK: i32 = 0;
/// What was asked for is not there, or some items are not on Intent.
pub const EXIT_INCOMPLETE: i32 = 1;
/// Usage or configuration error.
pub const EXIT_CONFIG: i32 = 2;

/// The operator's command for the on-call bridge.
#[derive(Debug, Parser)]
#[command(
    name = "bridge-admin",
    version,
    about = "The on-call bridge's operator command: show a file, list pending and failed deliveries, redrive, replay the forwarder's dead-letter queue.",
    after_help = "On AWS: TABLE_NAME and the standard AWS credential chain; a redrive also needs EVENT_BUS_NAME and the INTENT_* variables, a replay the forwarder's variables. With --local DATA_DIR: the local run's store (stop the local run first) and INTENT_* for a redrive.\nExit codes: 0 done (or nothing to do), 1 not there / not all on Intent, 2 usage or configuration error."
)]
pub struct Cli {
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Work on the local run's data folder (DATA_DIR/bridge.redb, DATA_DIR/inbox) instead
    /// of the DynamoDB table.
    #[arg(long, value_name = "DATA_DIR", global = true)]
    pub local: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// One file: its ordered log, each event's delivery state, its documents.
    Show {
        /// The intervention's reference.
        #[arg(value_name = "REF")]
        reference: String,
        /// Its contract reference.
        #[arg(long, value_name = "C")]
        contract: String,
    },
    /// Events and documents waiting for Intent, oldest first.
    Pending,
    /// Events and documents Intent refused for good, oldest first.
    Failed,
    /// Sends again what Intent refused (one file's events and documents, or all), in
    /// order, under each file's send lease.
    #[command(group(ArgGroup::new("what").required(true).args(["reference", "all_failed"])))]
    Redrive {
        /// The intervention's reference.
        #[arg(value_name = "REF", requires = "contract")]
        reference: Option<String>,
        /// Its contract reference.
        #[arg(long, value_name = "C", conflicts_with = "all_failed")]
        contract: Option<String>,
        /// Every failed event and every document Intent refused.
        #[arg(long)]
        all_failed: bool,
    },
    /// The document forwarder's dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqCommand,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum DlqCommand {
    /// Feeds the queue's messages back through the forwarder's logic; deletes each one
    /// the forwarder handled.
    Replay {
        /// The queue (default: FORWARDER_DLQ_URL).
        #[arg(long, value_name = "URL")]
        queue_url: Option<String>,
        /// At most this many messages.
        #[arg(long, value_name = "N")]
        max: Option<usize>,
    },
}

/// Parses the arguments; on failure, what to print where and the exit code (help and
/// version asked for go to `out` with 0; usage errors, a command missing its action
/// among them, to `err` with 2).
pub fn parse<I, T>(args: I) -> Result<Cli, (i32, bool, String)>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args).map_err(|error| {
        use clap::error::ErrorKind;
        match error.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                (EXIT_OK, true, error.to_string())
            }
            _ => (EXIT_CONFIG, false, error.to_string()),
        }
    })
}

/// One error line on `err`, and its exit code.
pub(crate) fn fail(err: &mut dyn Write, code: i32, message: impl std::fmt::Display) -> i32 {
    let _ = writeln!(
        err,
        "bridge-admin: {}",
        render::tidy_error(&message.to_string())
    );
    code
}

/// What a redrive sends with.
pub struct Senders<'a, I, E, R> {
    pub intent: &'a I,
    pub events: &'a E,
    /// The documents bucket (or the local inbox).
    pub objects: &'a R,
}

/// The operator's commands on one store.
pub struct Admin<'a, S, I, E, R, C> {
    pub store: &'a S,
    pub clock: &'a C,
    /// What a redrive sends with, or why it is not configured (exit 2 for a redrive).
    pub senders: Result<Senders<'a, I, E, R>, String>,
    pub documents: DocumentPolicy,
}

impl<S, I, E, R, C> Admin<'_, S, I, E, R, C>
where
    S: LoadFile
        + RecordDelivery
        + FinishDelivery
        + oncall_domain::ports::RequeueFailedEvent
        + oncall_domain::ports::MarkQuitusReceived
        + Outbox
        + DocumentLedger
        + UploadGrants
        + OperatorStore
        + ListPendingEvents,
    I: PublishToIntent + PublishDocument,
    E: PublishDomainEvents,
    R: ReadObject,
    C: Clock,
{
    /// Runs `show`, `pending`, `failed` or `redrive` (not `dlq`, which has its own
    /// adapters: [`dlq::replay`]); returns the exit code.
    pub async fn execute(
        &self,
        command: &Command,
        json: bool,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> i32 {
        let result = match command {
            Command::Show {
                reference,
                contract,
            } => {
                self.show(&FileId::new(reference, contract), json, out)
                    .await
            }
            Command::Pending => self.pending(json, out).await,
            Command::Failed => self.failed(json, out).await,
            Command::Redrive {
                reference,
                contract,
                all_failed,
            } => {
                let scope = match (reference, contract, all_failed) {
                    (Some(reference), Some(contract), false) => {
                        RedriveScope::File(FileId::new(reference, contract))
                    }
                    (None, None, true) => RedriveScope::AllFailed,
                    _ => {
                        return fail(
                            err,
                            EXIT_CONFIG,
                            "redrive takes REF --contract C, or --all-failed",
                        );
                    }
                };
                self.redrive(&scope, json, out).await
            }
            Command::Dlq { .. } => Err(Failure::Config(
                "dlq replay runs on the AWS deployment's queue (not on a local store)".into(),
            )),
        };
        match result {
            Ok(code) => code,
            Err(Failure::Config(message)) => fail(err, EXIT_CONFIG, message),
            Err(Failure::NotThere(message)) => fail(err, EXIT_INCOMPLETE, message),
            Err(Failure::Store(error)) => fail(
                err,
                EXIT_CONFIG,
                format!("the store could not be read: {error}"),
            ),
        }
    }

    async fn show(&self, id: &FileId, json: bool, out: &mut dyn Write) -> Result<i32, Failure> {
        let Some(view) = view_file(self.store, id).await? else {
            return Err(Failure::NotThere(unknown_file(id)));
        };
        render::show(&view, self.clock.now(), json, out)?;
        Ok(EXIT_OK)
    }

    async fn pending(&self, json: bool, out: &mut dyn Write) -> Result<i32, Failure> {
        let events = pending_events(self.store).await?;
        let mut documents = self.store.waiting_documents().await?;
        sort_documents(&mut documents);
        render::listing("pending", &events, &documents, self.clock.now(), json, out)?;
        Ok(EXIT_OK)
    }

    async fn failed(&self, json: bool, out: &mut dyn Write) -> Result<i32, Failure> {
        let events = failed_events(self.store).await?;
        let mut documents = self.store.failed_documents().await?;
        sort_documents(&mut documents);
        render::listing("failed", &events, &documents, self.clock.now(), json, out)?;
        Ok(EXIT_OK)
    }

    async fn redrive(
        &self,
        scope: &RedriveScope,
        json: bool,
        out: &mut dyn Write,
    ) -> Result<i32, Failure> {
        let senders = self
            .senders
            .as_ref()
            .map_err(|why| Failure::Config(why.clone()))?;
        let ports = RedrivePorts {
            store: self.store,
            intent: senders.intent,
            events: senders.events,
            objects: senders.objects,
            clock: self.clock,
            documents: self.documents,
        };
        let report = match redrive(&ports, scope, Deadline::none()).await {
            Ok(report) => report,
            Err(RedriveError::UnknownFile(id)) => {
                return Err(Failure::NotThere(unknown_file(&id)));
            }
            Err(RedriveError::Store(error)) => return Err(Failure::Store(error)),
        };
        render::redrive(&report, json, out)?;
        Ok(if report.all_done() {
            EXIT_OK
        } else {
            EXIT_INCOMPLETE
        })
    }
}

fn unknown_file(id: &FileId) -> String {
    format!(
        "no intervention {} under contract {}",
        id.reference, id.contract_reference
    )
}

/// Why a command stopped.
enum Failure {
    Config(String),
    NotThere(String),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Config(format!("could not write the output: {error}"))
    }
}

/// The whole command: parses `args`, builds the adapters from the environment (`env`
/// looks variables up; the AWS SDK reads its own from the process, as the functions do)
/// and runs. Returns the exit code.
pub async fn run<A, T>(args: A, env: &Lookup<'_>, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    A: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err((code, to_out, text)) => {
            let _ = if to_out {
                write!(out, "{text}")
            } else {
                write!(err, "{text}")
            };
            return code;
        }
    };
    match &cli.local {
        Some(dir) => run_local(&cli, dir, env, out, err).await,
        None => run_aws(&cli, env, out, err).await,
    }
}

async fn run_local(
    cli: &Cli,
    dir: &Path,
    env: &Lookup<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    if matches!(cli.command, Command::Dlq { .. }) {
        return fail(
            err,
            EXIT_CONFIG,
            "dlq replay runs on the AWS deployment's queue, not with --local",
        );
    }
    let path = dir.join("bridge.redb");
    if !path.is_file() {
        return fail(
            err,
            EXIT_CONFIG,
            format!(
                "no local store at {} (the local run's DATA_DIR)",
                path.display()
            ),
        );
    }
    let store = match EmbeddedStore::open(&path) {
        Ok(store) => store,
        Err(error) => {
            return fail(
                err,
                EXIT_CONFIG,
                format!(
                    "the local store {} could not be opened (stop the local run first): {error}",
                    path.display()
                ),
            );
        }
    };
    let intent = settings::intent(env, None);
    let events = JsonLinesEvents::new(
        local_bridge::config::events_file(settings::var(env, "EVENTS_FILE").as_deref(), dir),
        &settings::event_source(env),
    );
    let objects = InboxObjects::new(
        settings::var(env, "INBOX_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("inbox")),
    );
    let documents = match settings::document_policy(env) {
        Ok(policy) => policy,
        Err(why) => return fail(err, EXIT_CONFIG, why),
    };
    let admin = Admin {
        store: &store,
        // The operator's machine: its clock may be off (leases and claims allow for it).
        clock: &OperatorClock,
        senders: intent.as_ref().map_err(Clone::clone).map(|intent| Senders {
            intent,
            events: &events,
            objects: &objects,
        }),
        documents,
    };
    admin.execute(&cli.command, cli.json, out, err).await
}

async fn run_aws(cli: &Cli, env: &Lookup<'_>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let Some(table) = settings::var(env, "TABLE_NAME") else {
        return fail(
            err,
            EXIT_CONFIG,
            "TABLE_NAME is not set (the interventions table; or --local DATA_DIR for the local run's store)",
        );
    };
    let sdk = match settings::aws_config().await {
        Ok(sdk) => sdk,
        Err(why) => return fail(err, EXIT_CONFIG, why),
    };
    let documents = match settings::document_policy(env) {
        Ok(policy) => policy,
        Err(why) => return fail(err, EXIT_CONFIG, why),
    };
    if let Command::Dlq {
        action: DlqCommand::Replay { queue_url, max },
    } = &cli.command
    {
        let Some(queue_url) = queue_url
            .clone()
            .or_else(|| settings::var(env, "FORWARDER_DLQ_URL"))
        else {
            return fail(
                err,
                EXIT_CONFIG,
                "no queue: give --queue-url URL or set FORWARDER_DLQ_URL (the stack's DocumentForwarderDeadLetterQueueUrl output)",
            );
        };
        let forwarder = match settings::forwarder(&sdk, env, table, documents) {
            Ok(forwarder) => forwarder,
            Err(why) => return fail(err, EXIT_CONFIG, why),
        };
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        return dlq::replay(&sqs, &queue_url, *max, &forwarder, cli.json, out, err).await;
    }
    let path_style = match settings::s3_force_path_style(env) {
        Ok(path_style) => path_style,
        Err(why) => return fail(err, EXIT_CONFIG, why),
    };
    let intent = settings::intent(env, Some(&sdk));
    let signed_calls = match aws_wiring::aws_reqwest_client() {
        Ok(http) => http,
        Err(why) => return fail(err, EXIT_CONFIG, why),
    };
    let store = match aws_wiring::dynamodb_store(&sdk, &signed_calls, table) {
        Ok(store) => store,
        Err(why) => return fail(err, EXIT_CONFIG, why),
    };
    let events = settings::var(env, "EVENT_BUS_NAME")
        .ok_or_else(|| "a redrive needs EVENT_BUS_NAME (the domain event bus)".to_string())
        .and_then(|bus| {
            aws_wiring::event_publisher(&sdk, &signed_calls, bus, settings::event_source(env))
        });
    let objects = match aws_wiring::documents_reader(&sdk, &signed_calls, path_style) {
        Ok(objects) => objects,
        Err(why) => return fail(err, EXIT_CONFIG, why),
    };
    let senders = match (&intent, &events) {
        (Ok(intent), Ok(events)) => Ok(Senders {
            intent,
            events,
            objects: &objects,
        }),
        (Err(why), _) | (_, Err(why)) => Err(why.clone()),
    };
    let admin: Admin<'_, _, IntentClient, _, _, _> = Admin {
        store: &store,
        // The operator's machine: its clock may be off (leases and claims allow for it).
        clock: &OperatorClock,
        senders,
        documents,
    };
    admin.execute(&cli.command, cli.json, out, err).await
}
