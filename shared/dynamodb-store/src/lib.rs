//! Adapter: intervention files in one DynamoDB table.
//!
//! # Key design (single table)
//!
//! | item | `pk` | `sk` | notable attributes |
//! | --- | --- | --- | --- |
//! | the file's current state | `FILE#{contract}#{reference}` | `FILE` | `state` (`open`/`closed`), `outcome`, `owner`, `version` (last event's seq), `openedAt`, `openShard` (only while open), `sendingUntil` and `sendingBy` (the send lease and its taker's token, while held), `openingCopy`, `openingEventAt` and, once it is delivered, `openingDelivery` (the opening as stored, for closures written unread), `stagedClosing` and `stagedOutbox` (a closure written unread, until its closing has its own item), then `closingCopy` and, once delivered, `closingDelivery`, `closingToken` |
//! | one event of its log | same | `EVENT#{seq:06}` | `event`, `status`, `payload` (the JSON sent to Intent), `fingerprint`, `delivery` (`pending`/`delivered`/`failed`), `attempts`, `lastError`, `pendingShard` (only while pending) |
//! | a document published for it | same | `DOC#{publishedAt}#{object}` | `fileName`, `title`, `size`, `intentDocumentId` |
//! | one S3 object version (documents ledger) | `OBJECT#{sha256(bucket, key, version)}` | `OBJECT` | `status` (`in_progress` with `leaseUntil` and `claimedBy`, `published`, `rejected` with `reason`) |
//! | a partner's upload grant | `GRANT#{sha256(object key)}` | `GRANT` | `objectKey`, `reference`, `contractReference`, `partner`, `fileName`, `size`, `uploadBy` |
//!
//! `{contract}` and `{reference}` are escaped (`%` → `%25`, `#` → `%23`) so the key is
//! unambiguous whatever the references contain. One `Query` on `pk` (strongly
//! consistent) returns the file and its ordered event log.
//!
//! Two sparse global secondary indexes, so that nothing ever needs a `Scan`:
//! - `open-files`: hash `openShard` (`open-0` … `open-7`), range `openedAt`. Only open
//!   files carry `openShard`; closing removes it. The on-call closer queries the eight
//!   shards in parallel.
//! - `pending-events`: hash `pendingShard` (`pending-0` … `pending-7`), range
//!   `pendingSince`. Events not yet accepted by Intent carry it (a file item too, while it
//!   keeps a closing written unread), as do `failed-N`, `document-N`, `rejected-N` and
//!   `outbox-N` items for their own queues.
//!
//! A state change and its event append are one conditional write, conditioned on the
//! stored state, so two concurrent writers cannot both win: a `TransactWriteItems`, or,
//! for a partner's closure of a file with nothing but its delivered opening, one
//! `UpdateItem` of the file item that keeps the closing until its own item is written.

mod grants;
mod group_commit;
mod indexes;
mod items;
mod ledger;
mod operator;
mod store;
mod wire;

pub use items::{INDEX_SHARDS, OPEN_FILES_INDEX, PENDING_EVENTS_INDEX, file_pk};
pub use store::DynamoDbStore;
pub use wire::{AttributeValue, Item};
