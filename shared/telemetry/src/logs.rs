//! The JSON log line: one object per event, on one line.
//!
//! ```json
//! {"level":"INFO","requestId":"8f0e…","xrayTraceId":"Root=1-…;Parent=…;Sampled=1",
//!  "fields":{"message":"claim handled","status":201,"delivery":"delivered"},
//!  "span":{"method":"POST","reference":"INTER-0500","contract":"contract1","name":"invocation"}}
//! ```
//!
//! `requestId` and `xrayTraceId` come from the span lambda_runtime opens around each
//! invocation (`lambda_runtime::layers::trace::request_span`, fields of those names), so
//! every line an invocation writes carries them, from the handlers, the domain and the
//! adapters alike. `span` merges the fields of every span the event is in, outermost first
//! (an inner span's value wins), and names the innermost: the file reference of the
//! request's span stays on the lines of the spans nested in it.

use serde_json::{Map, Value};
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The span fields raised to the top of every line: the invocation's ids, as
/// lambda_runtime names them in its span (and Lambda in its own JSON log lines).
pub const INVOCATION_FIELDS: [&str; 2] = ["requestId", "xrayTraceId"];

/// A span's fields as JSON values, kept in the span's extensions.
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let value = i64::try_from(value)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_string()));
        self.put(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let value = u64::try_from(value)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_string()));
        self.put(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

/// Writes each event as one JSON line to `writer`.
pub(crate) struct JsonLines<W> {
    writer: W,
}

impl<W> JsonLines<W> {
    pub(crate) fn new(writer: W) -> Self {
        Self { writer }
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Written straight to the line (no tree of cloned values: one line per event, on
        // every request), in the order the first implementation built it: level, the
        // invocation's ids, the event's fields, the spans' fields merged (first seen
        // first, an inner span's value wins) with the innermost span's name.
        let scope: Vec<_> = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().collect())
            .unwrap_or_default();
        let extensions: Vec<_> = scope.iter().map(|span| span.extensions()).collect();
        let mut merged: Vec<(&str, &Value)> = Vec::new();
        for fields in extensions.iter().filter_map(|e| e.get::<SpanFields>()) {
            for (name, value) in &fields.0 {
                match merged.iter_mut().find(|(seen, _)| *seen == name) {
                    Some(slot) => slot.1 = value,
                    None => merged.push((name, value)),
                }
            }
        }
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));

        let mut line = Vec::with_capacity(512);
        line.extend_from_slice(b"{\"level\":");
        write_json(&mut line, event.metadata().level().as_str());
        for name in INVOCATION_FIELDS {
            if let Some(index) = merged.iter().position(|(seen, _)| *seen == name) {
                let (_, value) = merged.remove(index);
                line.push(b',');
                write_json(&mut line, name);
                line.push(b':');
                write_json(&mut line, value);
            }
        }
        line.extend_from_slice(b",\"fields\":");
        write_json(&mut line, &fields);
        if let Some(innermost) = scope.last() {
            let name = Value::from(innermost.name());
            match merged.iter_mut().find(|(seen, _)| *seen == "name") {
                Some(slot) => slot.1 = &name,
                None => merged.push(("name", &name)),
            }
            line.extend_from_slice(b",\"span\":{");
            for (index, (key, value)) in merged.iter().enumerate() {
                if index > 0 {
                    line.push(b',');
                }
                write_json(&mut line, key);
                line.push(b':');
                write_json(&mut line, value);
            }
            line.push(b'}');
        }
        line.extend_from_slice(b"}\n");
        // One write per line: lines from concurrent tasks never interleave.
        let _ = self
            .writer
            .make_writer_for(event.metadata())
            .write_all(&line);
    }
}

fn write_json(line: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(line, value).expect("log values always serialise");
}
