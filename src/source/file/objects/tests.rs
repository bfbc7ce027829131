//! Secrets and ConfigMaps in the route files: decoded as the apiserver
//! would, every problem located, the other documents unaffected.

use std::path::PathBuf;

use super::super::{parse, Files, Loaded};
use crate::snapshot::{Code, Diagnostic};

const ROUTE: &str =
    "apiVersion: switchyard.dev/v1alpha1\nkind: LoadBalancerRoute\nmetadata: {name: a}\nspec: {}\n";

/// A `kubernetes.io/tls` Secret `name` whose `tls.crt` is `crt` (base64).
fn tls_secret(name: &str, crt: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/tls\n\
         data:\n  tls.crt: {crt}\n  tls.key: a2V5\n"
    )
}

fn load(files: &[(&str, &str)]) -> Loaded {
    let files = files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), Ok(std::sync::Arc::from(*text))))
        .collect();
    parse(&Files(files), &Default::default())
}

fn key(ns: &str, name: &str) -> (String, String) {
    (ns.to_owned(), name.to_owned())
}

fn bytes(text: &str) -> std::sync::Arc<[u8]> {
    std::sync::Arc::from(text.as_bytes())
}

fn fields(errors: &[Diagnostic]) -> Vec<(&str, Code)> {
    errors
        .iter()
        .map(|e| (e.field.as_deref().unwrap_or(""), e.code))
        .collect()
}

#[test]
fn a_tls_secret_document_is_decoded_into_the_snapshot_beside_the_routes() {
    let text = format!("{ROUTE}---\n{}", tls_secret("mango-tls", "Y2VydA=="));
    let loaded = load(&[("routes.yaml", &text)]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.snapshot.routes.len(), 1);
    let secret = &loaded.snapshot.secrets[&key("default", "mango-tls")];
    assert_eq!(&*secret.origin, "routes.yaml");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(secret.data["tls.crt"], bytes("cert"));
    assert_eq!(secret.data["tls.key"], bytes("key"));
}

#[test]
fn string_data_is_merged_over_data_as_the_apiserver_does() {
    let loaded = load(&[(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\n\
         data: {tls.crt: b2xk, tls.key: a2V5}\nstringData: {tls.crt: new, ca.crt: ca}\n",
    )]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let secret = &loaded.snapshot.secrets[&key("shop", "s")];
    assert_eq!(secret.type_, None, "no type written, none made up");
    assert_eq!(secret.data["tls.crt"], bytes("new"));
    assert_eq!(secret.data["tls.key"], bytes("key"));
    assert_eq!(secret.data["ca.crt"], bytes("ca"));
}

#[test]
fn a_config_map_gives_its_data_and_binary_data_as_bytes() {
    let loaded = load(&[(
        "ca.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: client-ca, namespace: shop}\n\
         data:\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\nbinaryData: {extra: Y2E=}\n",
    )]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let ca = &loaded.snapshot.config_maps[&key("shop", "client-ca")];
    assert_eq!(ca.data["ca.crt"], bytes("-----BEGIN CERTIFICATE-----\n"));
    assert_eq!(ca.data["extra"], bytes("ca"));
    assert_eq!(ca.type_, None);
    assert!(loaded.snapshot.secrets.is_empty());
}

#[test]
fn bad_base64_names_file_resource_and_field_and_the_rest_still_loads() {
    let text = format!(
        "{}---\n{ROUTE}---\n{}",
        tls_secret("bad", "Y2V!dA=="),
        tls_secret("good", "Y2VydA==")
    );
    let loaded = load(&[("routes.yaml", &text)]);
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    let err = &loaded.errors[0];
    assert_eq!(err.code, Code::Invalid("invalid-base64"));
    assert_eq!(
        err.to_string(),
        "routes.yaml: Secret default/bad: data.tls.crt: not base64: '!' at character 3 \
         is not in the standard alphabet (A-Z a-z 0-9 + /)"
    );
    assert!(!loaded.snapshot.secrets.contains_key(&key("default", "bad")));
    assert!(loaded
        .snapshot
        .secrets
        .contains_key(&key("default", "good")));
    assert_eq!(loaded.snapshot.routes.len(), 1);
}

#[test]
fn values_of_the_wrong_type_are_schema_problems_each_located() {
    let loaded = load(&[(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: 3\n\
         data: {tls.crt: 12, tls.key: a2V5}\nstringData: [a]\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: text\n",
    )]);
    assert_eq!(
        fields(&loaded.errors),
        [
            ("type", Code::Schema),
            ("data.tls.crt", Code::Schema),
            ("stringData", Code::Schema),
            ("data", Code::Schema),
        ],
        "{:?}",
        loaded.errors
    );
    assert_eq!(
        loaded.errors[1].to_string(),
        "s.yaml: Secret default/s: data.tls.crt: expected a string, found a number"
    );
    assert_eq!(
        loaded.errors[3].resource.as_deref(),
        Some("ConfigMap default/c")
    );
    assert!(loaded.snapshot.secrets.is_empty());
    assert!(loaded.snapshot.config_maps.is_empty());
}

#[test]
fn unknown_fields_bad_keys_and_a_key_in_both_maps_are_reported() {
    let loaded = load(&[(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringdata: {a: b}\n\
         stringData: {tls crt: x}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {ca.crt: x}\n\
         binaryData: {ca.crt: Y2E=}\n",
    )]);
    assert_eq!(
        fields(&loaded.errors),
        [
            ("stringdata", Code::UnknownField),
            ("data.tls crt", Code::Invalid("invalid-key")),
            ("binaryData.ca.crt", Code::Invalid("duplicate-key")),
        ],
        "{:?}",
        loaded.errors
    );
}

#[test]
fn a_secret_without_a_name_or_of_another_version_is_a_document_problem() {
    let loaded = load(&[(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {namespace: shop}\n---\n\
         apiVersion: v2\nkind: Secret\nmetadata: {name: s}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: svc}\n",
    )]);
    let codes: Vec<_> = loaded.errors.iter().map(|e| e.code).collect();
    assert_eq!(codes, [Code::MissingName, Code::ApiVersion, Code::Kind]);
    assert_eq!(
        loaded.errors[0].to_string(),
        "s.yaml: document 1: metadata.name is missing"
    );
    assert_eq!(
        loaded.errors[1].to_string(),
        "s.yaml: document 2: apiVersion is \"v2\", expected v1"
    );
}

#[test]
fn a_secret_defined_twice_keeps_the_first_and_names_where_it_is() {
    let secret = tls_secret("mango-tls", "Y2VydA==");
    let second = tls_secret("mango-tls", "a2V5");
    let loaded = load(&[("a.yaml", &secret), ("b.yaml", &second)]);
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    assert_eq!(
        loaded.errors[0].to_string(),
        "b.yaml: Secret default/mango-tls: metadata.name: \
         Secret default/mango-tls is defined twice; the first is in a.yaml"
    );
    let kept = &loaded.snapshot.secrets[&key("default", "mango-tls")];
    assert_eq!(&*kept.origin, "a.yaml");
    assert_eq!(kept.data["tls.crt"], bytes("cert"));
}

#[test]
fn a_secret_and_a_config_map_of_one_name_are_two_objects() {
    let loaded = load(&[(
        "ca.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: ca}\nstringData: {ca.crt: a}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca}\ndata: {ca.crt: b}\n",
    )]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.snapshot.secrets.len(), 1);
    assert_eq!(loaded.snapshot.config_maps.len(), 1);
}
