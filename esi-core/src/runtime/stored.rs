//! The catalog kept in the store, so that a running daemon picks up schemas and heat templates
//! applied while it runs (the recorded system kept heat templates under `/config` too).
//!
//! | key | body (in the usual `/config` envelope) |
//! |---|---|
//! | `/config/v2.0/heat_templates/<id>` | `{id, handler, watch, template_file, parameter_mappings}` (as recorded) |
//! | `/config/v2.0/schemas/<type>` | `{"id": <type>, "form": "reduced" \| "gohan", "schema": {…}}` |
//! | `/config/v2.0/esi_handlers/default` | `{"id": "default", "handlers": [...]}` |
//!
//! The job manager rebuilds its catalog whenever one of these keys changes; workers reload it
//! when a job names a type or template they do not know.

use super::decode_config;
use crate::catalog::{Catalog, HeatTemplate, LoadError, Schema};
use crate::store::{Store, StoreError};
use serde_json::{json, Value};

/// Prefix of stored schemas.
pub const SCHEMAS: &str = "/config/v2.0/schemas";
/// Prefix of stored heat templates.
pub const TEMPLATES: &str = "/config/v2.0/heat_templates";
/// Prefix of the stored handler list.
pub const HANDLERS: &str = "/config/v2.0/esi_handlers";
/// The one handler-list key.
pub const HANDLERS_KEY: &str = "/config/v2.0/esi_handlers/default";

/// True for a key that holds part of the catalog.
pub fn is_catalog_key(key: &str) -> bool {
    [SCHEMAS, TEMPLATES, HANDLERS]
        .iter()
        .any(|p| key.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// The stored body of a schema in the reduced (conformance-world) form.
pub fn reduced_schema_body(type_name: &str, schema: &Value) -> Value {
    json!({"id": type_name, "form": "reduced", "schema": schema})
}

/// The stored body of a schema in Gohan's export form.
pub fn gohan_schema_body(schema: &Value) -> Value {
    let id = schema.get("id").cloned().unwrap_or(Value::Null);
    json!({"id": id, "form": "gohan", "schema": schema})
}

/// The stored body of a heat template (the template with its `id`).
pub fn template_body(id: &str, template: &Value) -> Value {
    let mut t = template.clone();
    if let Value::Object(o) = &mut t {
        o.insert("id".into(), Value::String(id.to_string()));
    }
    t
}

/// Parses one stored schema body.
pub fn parse_schema_body(body: &Value) -> Result<Schema, LoadError> {
    let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
    let schema = body.get("schema").unwrap_or(&Value::Null);
    match body.get("form").and_then(Value::as_str) {
        Some("gohan") => Schema::from_gohan(schema),
        _ => Schema::from_reduced(id, schema),
    }
}

/// Adds the stored schemas, templates and handler list to `catalog` (entries deleted or marked
/// for deletion are skipped; malformed entries are logged and skipped).
pub async fn merge_stored(store: &dyn Store, catalog: &mut Catalog) -> Result<(), StoreError> {
    let live = |text: &str, key: &str| match decode_config(text) {
        Ok(c) if !c.marked_for_deletion => Some(c.body),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(key, error = %e, "malformed catalog entry skipped");
            None
        }
    };
    let (schemas, _) = store.range(&format!("{SCHEMAS}/")).await?;
    for kv in schemas {
        if let Some(body) = live(&kv.value, &kv.key) {
            match parse_schema_body(&body) {
                Ok(s) => {
                    catalog.schemas.insert(s.id.clone(), s);
                }
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "schema skipped"),
            }
        }
    }
    let (templates, _) = store.range(&format!("{TEMPLATES}/")).await?;
    for kv in templates {
        let Some(id) = kv.key.rsplit('/').next().map(str::to_string) else {
            continue;
        };
        if let Some(body) = live(&kv.value, &kv.key) {
            match HeatTemplate::from_json(&id, &body) {
                Ok(t) => {
                    catalog.templates.insert(id, t);
                }
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "heat template skipped"),
            }
        }
    }
    if let Some(kv) = store.get(HANDLERS_KEY).await? {
        if let Some(list) = live(&kv.value, &kv.key)
            .and_then(|b| b.get("handlers").cloned())
            .and_then(|h| serde_json::from_value::<Vec<String>>(h).ok())
        {
            catalog.handlers = list;
        }
    }
    Ok(())
}

/// `base` merged with the stored catalog.
pub async fn load_catalog(store: &dyn Store, base: &Catalog) -> Result<Catalog, StoreError> {
    let mut c = base.clone();
    merge_stored(store, &mut c).await?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::config_envelope;
    use crate::store::{MemoryStore, PutMode};

    #[tokio::test]
    async fn stored_schemas_and_templates_load_over_the_base() {
        let store = MemoryStore::new();
        let put = |k: String, b: Value| {
            let store = &store;
            async move {
                store
                    .put(&k, &config_envelope(&b, 1, false), PutMode::Overwrite, None)
                    .await
                    .expect("put");
            }
        };
        put(
            format!("{SCHEMAS}/port"),
            reduced_schema_body("port", &json!({"template_paths": {"heat_worker": "Cport"}})),
        )
        .await;
        put(
            format!("{TEMPLATES}/port"),
            template_body(
                "port",
                &json!({"template_file": "x", "parameter_mappings": {}}),
            ),
        )
        .await;
        put(format!("{SCHEMAS}/bad"), json!({"id": "bad", "schema": 5})).await;
        let c = load_catalog(&store, &Catalog::default())
            .await
            .expect("loads");
        assert_eq!(c.schemas["port"].prefix, "/v2.0/ports");
        assert!(c.schemas["port"].template_paths.contains_key("heat_worker"));
        assert_eq!(c.templates["port"].template_file, "x");
        assert!(!c.schemas.contains_key("bad"));
        assert!(is_catalog_key("/config/v2.0/schemas/port"));
        assert!(!is_catalog_key("/config/v2.0/schemasx/port"));
        assert!(!is_catalog_key("/config/v2.0/ports/p"));
    }
}
