//! `openapi.yaml` as a contract: a validator of HTTP answers against it (the path and
//! method must be documented, the status documented for them, the content type documented
//! for that status, the body valid against its schema with every `$ref` resolved, the
//! documented headers present and valid), the document's own checks (the OpenAPI 3.1
//! meta-schema, each Schema Object against JSON Schema 2020-12, every `$ref` resolving,
//! path parameters declared, examples valid), and the routes it shares with
//! `template.yaml`.
//!
//! Plain functions over `serde_json::Value`: the YAML is parsed once into JSON.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The HTTP methods a path item may hold.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The security scheme carrying the deployed API's OAuth2 scopes.
pub const OAUTH_SCHEME: &str = "partnerOAuth";

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// YAML to JSON. Tags (CloudFormation's `!Ref`, `!GetAtt`, `!Sub`) are dropped and their
/// values kept, so `ApiId: !Ref PartnerApi` reads `"ApiId": "PartnerApi"`.
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str(text).map_err(|error| error.to_string())
}

/// One segment of a JSON pointer.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn local_pointer(reference: &str) -> Result<String, String> {
    reference
        .strip_prefix('#')
        .map(str::to_string)
        .ok_or_else(|| format!("{reference}: only local references are used"))
}

/// A response as the host gave it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What an answer was, in the document's terms: the operation, the status, the media type
/// and, for a problem document, its `type` (empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Variant {
    pub operation: String,
    pub status: String,
    pub media_type: String,
    pub kind: String,
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} → {} {}",
            self.operation, self.status, self.media_type
        )?;
        if !self.kind.is_empty() {
            write!(f, " {}", self.kind)?;
        }
        Ok(())
    }
}

/// The media type of a `Content-Type` value, without parameters, lower case.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

pub struct Contract {
    pub doc: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl Contract {
    pub fn new(doc: Value) -> Self {
        Self {
            doc,
            validators: Mutex::new(HashMap::new()),
        }
    }

    pub fn from_yaml(text: &str) -> Result<Self, String> {
        parse_yaml(text).map(Self::new)
    }

    /// The value at `pointer`, following local `$ref`s on the way and at the end, with the
    /// pointer it was found at.
    pub fn resolve(&self, pointer: &str) -> Result<(&Value, String), String> {
        let mut at = String::new();
        for segment in pointer.split('/').skip(1) {
            let (_, found_at) = self.follow(&at)?;
            at = format!("{found_at}/{segment}");
        }
        self.follow(&at)
    }

    /// The value at `pointer` after following its `$ref`s.
    fn follow(&self, pointer: &str) -> Result<(&Value, String), String> {
        let mut pointer = pointer.to_string();
        for _ in 0..32 {
            let value = self
                .doc
                .pointer(&pointer)
                .ok_or_else(|| format!("nothing at #{pointer}"))?;
            match value.get("$ref").and_then(Value::as_str) {
                Some(target) => pointer = local_pointer(target)?,
                None => return Ok((value, pointer)),
            }
        }
        Err(format!("#{pointer}: a $ref loop"))
    }

    /// A validator for `schema`, a Schema Object of this document: its `$ref`s resolve
    /// against the whole document; formats (`date-time`, `uri`, …) are asserted.
    pub fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = schema.to_string();
        if let Some(validator) = self.validators.lock().unwrap().get(&key) {
            return Ok(validator.clone());
        }
        let mut root = self.doc.clone();
        root["$schema"] = json!(DRAFT_2020_12);
        root["$defs"] = json!({ "target": schema });
        root["$ref"] = json!("#/$defs/target");
        let validator = Arc::new(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&root)
                .map_err(|error| format!("the schema does not compile: {error}"))?,
        );
        self.validators
            .lock()
            .unwrap()
            .insert(key, validator.clone());
        Ok(validator)
    }

    /// Every reason `instance` is not valid against `schema` (instance path and message,
    /// without the instance's value: it may be a tenant's data).
    pub fn schema_errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        match self.validator(schema) {
            Err(error) => vec![error],
            Ok(validator) => validator
                .iter_errors(instance)
                .map(|error| format!("at {}: {}", error.instance_path(), error.masked()))
                .collect(),
        }
    }

    /// The documented path template matching a concrete path (`/interventions/INTER-1`
    /// → `/interventions/{reference}`).
    pub fn path_template(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()?
            .keys()
            .find(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(part, segment)| {
                        (part.starts_with('{') && part.ends_with('}') && !segment.is_empty())
                            || part == segment
                    })
            })
            .cloned()
    }

    /// Checks one answer to `method` `uri` against the document.
    pub fn check(&self, method: &str, uri: &str, answer: &Answer) -> Result<Variant, Vec<String>> {
        let path = uri.split('?').next().unwrap_or_default();
        let template = self
            .path_template(path)
            .ok_or_else(|| vec![format!("{method} {path}: the path is not documented")])?;
        let method = method.to_ascii_lowercase();
        let operation = format!("{} {template}", method.to_ascii_uppercase());
        let operation_pointer = format!("/paths/{}/{method}", escape(&template));
        if self.doc.pointer(&operation_pointer).is_none() {
            return Err(vec![format!(
                "{operation}: the operation is not documented"
            )]);
        }
        let status = answer.status.to_string();
        let (response, response_pointer) = self
            .resolve(&format!("{operation_pointer}/responses/{status}"))
            .map_err(|_| {
                vec![format!(
                    "{operation}: status {status} is not documented (documented: {})",
                    self.doc
                        .pointer(&format!("{operation_pointer}/responses"))
                        .and_then(Value::as_object)
                        .map(|r| r.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                )]
            })?;
        let mut errors = Vec::new();
        let mut variant = Variant {
            operation: operation.clone(),
            status: status.clone(),
            media_type: String::new(),
            kind: String::new(),
        };

        // Headers: the required ones present, each present one valid.
        if let Some(headers) = response.get("headers").and_then(Value::as_object) {
            for (name, _) in headers {
                let pointer = format!("{response_pointer}/headers/{}", escape(name));
                let (header, _) = match self.resolve(&pointer) {
                    Ok(found) => found,
                    Err(error) => {
                        errors.push(error);
                        continue;
                    }
                };
                match answer.headers.get(name.as_str()) {
                    None if header["required"] == json!(true) => errors.push(format!(
                        "{operation} → {status}: the required header {name} is missing"
                    )),
                    None => {}
                    Some(value) => {
                        let value = json!(value.to_str().unwrap_or_default());
                        for error in self.schema_errors(&header["schema"], &value) {
                            errors.push(format!("{operation} → {status}: header {name} {error}"));
                        }
                    }
                }
            }
        }

        // Body: the content type documented, the body valid against its schema.
        let content = response.get("content").and_then(Value::as_object);
        match (answer.content_type(), content) {
            (None, None) if answer.body.is_empty() => {}
            (None, _) => errors.push(format!(
                "{operation} → {status}: the answer has no Content-Type"
            )),
            (Some(found), None) => errors.push(format!(
                "{operation} → {status}: no content documented, the answer is {found}"
            )),
            (Some(found), Some(content)) => {
                let media_type = essence(found);
                variant.media_type = media_type.clone();
                match content.iter().find(|(key, _)| essence(key) == media_type) {
                    None => errors.push(format!(
                        "{operation} → {status}: content type {media_type} is not documented (documented: {})",
                        content.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                    Some((_, media)) => match serde_json::from_slice::<Value>(&answer.body) {
                        Err(error) => errors.push(format!(
                            "{operation} → {status}: the body is not JSON: {error}"
                        )),
                        Ok(body) => {
                            if media_type == "application/problem+json" {
                                variant.kind =
                                    body["type"].as_str().unwrap_or_default().to_string();
                            }
                            match media.get("schema") {
                                None => errors.push(format!(
                                    "{operation} → {status}: {media_type} has no schema"
                                )),
                                Some(schema) => {
                                    for error in self.schema_errors(schema, &body) {
                                        errors.push(format!(
                                            "{operation} → {status} {media_type}: {error}"
                                        ));
                                    }
                                }
                            }
                        }
                    },
                }
            }
        }
        if errors.is_empty() {
            Ok(variant)
        } else {
            Err(errors)
        }
    }

    /// Every answer the document describes as the bridge's own (API Gateway's
    /// `GatewayMessage` answers left out): one variant per operation, status, media type
    /// and problem `type`.
    pub fn documented_variants(&self) -> BTreeSet<Variant> {
        let mut variants = BTreeSet::new();
        for (template, operation_pointer, method) in self.operations() {
            let operation = format!("{} {template}", method.to_ascii_uppercase());
            let responses = self.doc["paths"][template.as_str()][method.as_str()]["responses"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for status in responses.keys() {
                let Ok((response, _)) =
                    self.resolve(&format!("{operation_pointer}/responses/{status}"))
                else {
                    continue;
                };
                for (media_type, media) in response["content"].as_object().into_iter().flatten() {
                    if media["schema"]["$ref"] == json!("#/components/schemas/GatewayMessage") {
                        continue;
                    }
                    let kinds = if media_type == "application/problem+json" {
                        self.problem_types(&media["schema"])
                    } else {
                        vec![String::new()]
                    };
                    for kind in kinds {
                        variants.insert(Variant {
                            operation: operation.clone(),
                            status: status.clone(),
                            media_type: media_type.clone(),
                            kind,
                        });
                    }
                }
            }
        }
        variants
    }

    /// The problem `type`s a schema allows (its `const`, through `$ref` and `oneOf`).
    fn problem_types(&self, schema: &Value) -> Vec<String> {
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(target) => match local_pointer(target).and_then(|p| self.resolve(&p)) {
                Ok((found, _)) => found,
                Err(_) => return Vec::new(),
            },
            None => schema,
        };
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            return branches
                .iter()
                .flat_map(|b| self.problem_types(b))
                .collect();
        }
        schema["properties"]["type"]["const"]
            .as_str()
            .map(|kind| vec![kind.to_string()])
            .unwrap_or_default()
    }

    /// `(path template, operation pointer, method)` of every operation.
    /// The pointers of an operation's parameters: its path's list, then its own.
    fn parameter_pointers(&self, template: &str, operation: &str) -> Vec<String> {
        [
            format!("/paths/{}/parameters", escape(template)),
            format!("{operation}/parameters"),
        ]
        .into_iter()
        .flat_map(|list| {
            let count = self
                .doc
                .pointer(&list)
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            (0..count).map(move |index| format!("{list}/{index}"))
        })
        .collect()
    }

    pub fn operations(&self) -> Vec<(String, String, String)> {
        let mut operations = Vec::new();
        for (template, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                if item.get(method).is_some() {
                    operations.push((
                        template.clone(),
                        format!("/paths/{}/{method}", escape(template)),
                        method.to_string(),
                    ));
                }
            }
        }
        operations
    }

    /// `METHOD /path` → the OAuth2 scopes its security requires.
    pub fn routes(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.operations()
            .into_iter()
            .map(|(template, pointer, method)| {
                let scopes = self
                    .doc
                    .pointer(&format!("{pointer}/security"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|requirement| requirement.get(OAUTH_SCHEME))
                    .flat_map(|scopes| scopes.as_array().cloned().unwrap_or_default())
                    .filter_map(|scope| scope.as_str().map(str::to_string))
                    .collect();
                (
                    format!("{} {template}", method.to_ascii_uppercase()),
                    scopes,
                )
            })
            .collect()
    }

    /// What is wrong with the document itself: against the OpenAPI 3.1 meta-schema
    /// `meta_schema`, each Schema Object against JSON Schema 2020-12, unresolved `$ref`s,
    /// duplicate operation ids, undeclared or unused path parameters, invalid examples.
    pub fn document_problems(&self, meta_schema: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        // Formats are annotations in JSON Schema 2020-12 (the meta-schema's dialect): a
        // server URL's `{variable}`s are not a URI's syntax, yet they are OpenAPI's.
        match jsonschema::options().build(meta_schema) {
            Err(error) => problems.push(format!("the meta-schema does not compile: {error}")),
            Ok(validator) => {
                problems.extend(validator.iter_errors(&self.doc).map(|error| {
                    format!("OpenAPI 3.1 schema, at {}: {error}", error.instance_path())
                }))
            }
        }

        let mut references = Vec::new();
        collect_references(&self.doc, "", &mut references);
        for (at, target) in &references {
            if let Err(error) = local_pointer(target).and_then(|p| self.resolve(&p)) {
                problems.push(format!("{at}: $ref {target}: {error}"));
            }
        }

        let mut operation_ids = BTreeSet::new();
        for (template, pointer, _) in self.operations() {
            let operation = &self.doc.pointer(&pointer).cloned().unwrap_or_default();
            match operation["operationId"].as_str() {
                Some(id) if !operation_ids.insert(id.to_string()) => {
                    problems.push(format!("{pointer}: operationId {id} used twice"))
                }
                Some(_) => {}
                None => problems.push(format!("{pointer}: no operationId")),
            }
            let in_template: BTreeSet<String> = template
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_string)
                .collect();
            let mut declared = BTreeSet::new();
            for at in self.parameter_pointers(&template, &pointer) {
                match self.resolve(&at) {
                    Ok((parameter, _)) if parameter["in"] == "path" => {
                        if parameter["required"] != json!(true) {
                            problems.push(format!("{at}: a path parameter must be required"));
                        }
                        declared.insert(parameter["name"].as_str().unwrap_or_default().to_string());
                    }
                    Ok(_) => {}
                    Err(error) => problems.push(error),
                }
            }
            if declared != in_template {
                problems.push(format!(
                    "{pointer}: path parameters declared {declared:?}, in the path {in_template:?}"
                ));
            }
        }

        // Schema Objects, each against JSON Schema 2020-12 and compiled within the document;
        // the examples each one gives.
        for (pointer, schema) in self.schema_objects() {
            if let Err(error) = jsonschema::draft202012::meta::validate(&schema) {
                problems.push(format!(
                    "#{pointer}: not a JSON Schema 2020-12 schema: {error}"
                ));
            }
            if let Err(error) = self.validator(&schema) {
                problems.push(format!("#{pointer}: {error}"));
            }
            for (index, example) in schema["examples"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                for error in self.schema_errors(&schema, example) {
                    problems.push(format!("#{pointer}/examples/{index}: {error}"));
                }
            }
        }
        for (pointer, schema, example) in self.examples() {
            for error in self.schema_errors(&schema, &example) {
                problems.push(format!("example #{pointer}: {error}"));
            }
        }
        problems
    }

    /// Objects that hold a `schema` and examples: media types, parameters, headers, each
    /// with its pointer.
    fn schema_holders(&self) -> Vec<String> {
        let mut holders = BTreeSet::new();
        let add_content = |holders: &mut BTreeSet<String>, pointer: &str| {
            if let Ok((value, at)) = self.resolve(pointer) {
                for media_type in value["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    holders.insert(format!("{at}/content/{}", escape(media_type)));
                }
                for name in value["headers"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    if let Ok((_, header)) = self.resolve(&format!("{at}/headers/{}", escape(name)))
                    {
                        holders.insert(header);
                    }
                }
            }
        };
        for (template, pointer, _) in self.operations() {
            if self
                .doc
                .pointer(&format!("{pointer}/requestBody"))
                .is_some()
            {
                add_content(&mut holders, &format!("{pointer}/requestBody"));
            }
            for status in self
                .doc
                .pointer(&format!("{pointer}/responses"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                add_content(&mut holders, &format!("{pointer}/responses/{status}"));
            }
            for parameter in self.parameter_pointers(&template, &pointer) {
                if let Ok((_, at)) = self.resolve(&parameter) {
                    holders.insert(at);
                }
            }
        }
        for kind in ["responses", "requestBodies"] {
            for name in self.doc["components"][kind]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                add_content(
                    &mut holders,
                    &format!("/components/{kind}/{}", escape(name)),
                );
            }
        }
        for kind in ["parameters", "headers"] {
            for name in self.doc["components"][kind]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                holders.insert(format!("/components/{kind}/{}", escape(name)));
            }
        }
        holders.into_iter().collect()
    }

    /// Every Schema Object at the top of a holder or of `components.schemas`.
    fn schema_objects(&self) -> Vec<(String, Value)> {
        let mut schemas: Vec<(String, Value)> = self.doc["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, schema)| {
                (
                    format!("/components/schemas/{}", escape(name)),
                    schema.clone(),
                )
            })
            .collect();
        for holder in self.schema_holders() {
            if let Some(schema) = self.doc.pointer(&format!("{holder}/schema")) {
                schemas.push((format!("{holder}/schema"), schema.clone()));
            }
        }
        schemas
    }

    /// `(pointer, schema, value)` of every `example` and `examples` entry of a media type,
    /// parameter or header.
    pub fn examples(&self) -> Vec<(String, Value, Value)> {
        let mut examples = Vec::new();
        for holder in self.schema_holders() {
            let Some(value) = self.doc.pointer(&holder) else {
                continue;
            };
            let schema = value["schema"].clone();
            if let Some(example) = value.get("example") {
                examples.push((format!("{holder}/example"), schema.clone(), example.clone()));
            }
            for (name, _) in value["examples"].as_object().into_iter().flatten() {
                let pointer = format!("{holder}/examples/{}", escape(name));
                match self.resolve(&pointer) {
                    Ok((example, at)) => match example.get("value") {
                        Some(value) => examples.push((at, schema.clone(), value.clone())),
                        None => {
                            examples.push((at, json!(false), json!("an example without a value")))
                        }
                    },
                    Err(error) => examples.push((pointer, json!(false), json!(error))),
                }
            }
        }
        examples
    }
}

/// `(where, target)` of every `$ref` of the document (example values left out: they are
/// data), and of every discriminator mapping.
fn collect_references(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                let here = format!("{at}/{}", escape(key));
                match key.as_str() {
                    "$ref" => {
                        if let Some(target) = child.as_str() {
                            out.push((at.to_string(), target.to_string()));
                        }
                    }
                    "example" | "value" => {}
                    "examples" if child.is_array() => {}
                    "mapping" if at.ends_with("/discriminator") => {
                        for (name, target) in child.as_object().into_iter().flatten() {
                            if let Some(target) = target.as_str() {
                                out.push((format!("{here}/{name}"), target.to_string()));
                            }
                        }
                    }
                    _ => collect_references(child, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                collect_references(child, &format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// `METHOD /path` → AuthorizationScopes of every HTTP API event of `template.yaml`'s
/// functions.
pub fn template_routes(template: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut routes = BTreeMap::new();
    for (_, resource) in template["Resources"].as_object().into_iter().flatten() {
        for (_, event) in resource["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if event["Type"] != "HttpApi" {
                continue;
            }
            let properties = &event["Properties"];
            let route = format!(
                "{} {}",
                properties["Method"]
                    .as_str()
                    .unwrap_or("?")
                    .to_ascii_uppercase(),
                properties["Path"].as_str().unwrap_or("?")
            );
            let scopes = properties["Auth"]["AuthorizationScopes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|scope| scope.as_str().map(str::to_string))
                .collect();
            routes.insert(route, scopes);
        }
    }
    routes
}

/// The scopes `template.yaml`'s Cognito resource servers define (`identifier/name` →
/// description).
pub fn template_scopes(template: &Value) -> BTreeMap<String, String> {
    let mut scopes = BTreeMap::new();
    for (_, resource) in template["Resources"].as_object().into_iter().flatten() {
        if resource["Type"] != "AWS::Cognito::UserPoolResourceServer" {
            continue;
        }
        let identifier = resource["Properties"]["Identifier"].as_str().unwrap_or("?");
        for scope in resource["Properties"]["Scopes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            scopes.insert(
                format!(
                    "{identifier}/{}",
                    scope["ScopeName"].as_str().unwrap_or("?")
                ),
                scope["ScopeDescription"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    scopes
}

/// The differences between two route tables, in words (empty: the same routes with the
/// same scopes).
pub fn route_drift(
    left_name: &str,
    left: &BTreeMap<String, BTreeSet<String>>,
    right_name: &str,
    right: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut drift = Vec::new();
    for route in left.keys().filter(|route| !right.contains_key(*route)) {
        drift.push(format!("{route} is in {left_name}, not in {right_name}"));
    }
    for route in right.keys().filter(|route| !left.contains_key(*route)) {
        drift.push(format!("{route} is in {right_name}, not in {left_name}"));
    }
    for (route, scopes) in left {
        if let Some(other) = right.get(route)
            && other != scopes
        {
            drift.push(format!(
                "{route}: scopes {scopes:?} in {left_name}, {other:?} in {right_name}"
            ));
        }
    }
    drift
}
