//! The system tests, one binary (one link, one global log capture): each module drives
//! real parts (DynamoDB Local and moto started by the project's scripts, the Intent
//! simulator) through the functions' own code.

mod bad_input;
mod bridge_admin;
mod claim_intake;
mod closure;
mod document_forwarding;
mod dynamodb_store;
mod effectively_once;
mod iam;
mod intent_client;
mod observability;
mod oncall_closer;
mod openapi;
mod quitus_upload;
mod readme;
mod round_trips;
mod secrets;
mod signatures;
