//! The committed CRD is what the code generates, and it documents itself.

use serde_json::Value;

const COMMITTED: &str = include_str!("../crds/loadbalancerroutes.switchyard.dev.yaml");

#[test]
fn committed_crd_matches_the_generated_one() {
    let generated = switchyard::api::crd_yaml().expect("render the CRD");
    assert!(
        generated == COMMITTED,
        "crds/ is stale: run `cargo run -- crd > crds/loadbalancerroutes.switchyard.dev.yaml`"
    );
}

/// Walks every property of the schema, collecting the paths that have no
/// description (what `kubectl explain` would show empty).
fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            // Kubernetes documents metadata itself.
            if here == ".metadata" || here == ".apiVersion" || here == ".kind" {
                continue;
            }
            if prop.get("description").is_none() {
                out.push(here.clone());
            }
            undocumented(prop, &here, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, path, out);
    }
}

#[test]
fn every_field_has_a_description_for_kubectl_explain() {
    let crd: Value = serde_yaml_ng::from_str(COMMITTED).expect("CRD YAML");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut missing = Vec::new();
    undocumented(schema, "", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}

#[test]
fn crd_has_status_subresource_short_name_and_printer_columns() {
    let crd: Value = serde_yaml_ng::from_str(COMMITTED).expect("CRD YAML");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "lbr");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        ["Hosts", "Accepted", "Ready", "TLS", "Endpoints", "Age"]
    );
}

#[test]
fn the_apiserver_can_refuse_bad_routes_itself() {
    // What `kubectl apply` refuses without switchyard running: CEL rules,
    // ranges, patterns and list bounds in the schema.
    for rule in [
        "has(self.service) != has(self.address)",
        "!has(self.service) || has(self.port)",
        "!has(self.redirect) || !has(self.backends) || size(self.backends) == 0",
        "!has(self.statusCode) || self.statusCode in [301, 302, 303, 307, 308]",
        "self.value.startsWith('/')",
        "self.type != 'Header' || has(self.header)",
    ] {
        let quoted = rule.replace('\'', "''");
        assert!(
            COMMITTED.contains(rule) || COMMITTED.contains(&quoted),
            "CEL rule missing from the CRD: {rule}"
        );
    }
    let crd: Value = serde_yaml_ng::from_str(COMMITTED).expect("CRD YAML");
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let hosts = &spec["properties"]["hosts"];
    assert_eq!(hosts["maxItems"], 16);
    assert!(hosts["items"]["pattern"].is_string());
    let backend = &spec["properties"]["rules"]["items"]["properties"]["backends"]["items"];
    assert_eq!(backend["properties"]["weight"]["maximum"], 1000.0);
}
