//! Where the controller tests run: the in-process API double (always), or
//! a real kube-apiserver when `SWITCHYARD_TEST_KUBECONFIG` names a
//! kubeconfig. Against a real server each test gets its own namespace
//! (deleted afterwards), the CRD is applied first, and backends live in a
//! test host's network namespace, because a real apiserver refuses
//! loopback addresses in EndpointSlices.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::Api;
use serde_json::Value;
use tokio::net::TcpListener;

use super::kube_api::{self, KubeApi};
use super::netns::TestHost;
use super::{wait_until, Backend};

static NEXT: AtomicU32 = AtomicU32::new(0);
const CRD: &str = include_str!("../../crds/loadbalancerroutes.switchyard.dev.yaml");
/// How long cluster conditions may take to show (watches, leases).
pub const CLUSTER_DEADLINE: Duration = Duration::from_secs(20);

/// The API server a test talks to.
pub enum Cluster {
    /// The in-process double; fault injection is available.
    Double {
        /// The double.
        api: KubeApi,
        /// The namespace the test uses.
        namespace: String,
    },
    /// A real apiserver.
    Real {
        /// Its client.
        client: kube::Client,
        /// The test's own namespace.
        namespace: String,
        /// Where backends listen.
        host: TestHost,
    },
}

impl Cluster {
    /// The double, or a real apiserver if `SWITCHYARD_TEST_KUBECONFIG` is set.
    pub async fn start(test: &str) -> Cluster {
        let Ok(path) = std::env::var("SWITCHYARD_TEST_KUBECONFIG") else {
            return Cluster::Double {
                api: kube_api::start().await,
                namespace: "shop".to_owned(),
            };
        };
        let kubeconfig = kube::config::Kubeconfig::read_from(&path)
            .unwrap_or_else(|e| panic!("SWITCHYARD_TEST_KUBECONFIG={path}: {e}"));
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kubeconfig");
        let client = kube::Client::try_from(config).expect("client");
        let host = TestHost::create().expect(
            "a real apiserver needs backends in a network namespace: run as root with iproute2",
        );
        let namespace = format!(
            "sy-{}-{}-{}",
            test.replace('_', "-").chars().take(30).collect::<String>(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let cluster = Cluster::Real {
            client,
            namespace: namespace.clone(),
            host,
        };
        let crd: Value = serde_yaml_ng::from_str(CRD).expect("CRD");
        cluster.server_apply(crd).await;
        cluster.server_apply(kube_api::namespace(&namespace)).await;
        cluster
            .server_apply(kube_api::namespace(&format!("{namespace}-b")))
            .await;
        cluster
    }

    /// The client the controller under test uses.
    pub fn client(&self) -> kube::Client {
        match self {
            Cluster::Double { api, .. } => api.client(),
            Cluster::Real { client, .. } => client.clone(),
        }
    }

    /// The test's namespace.
    pub fn ns(&self) -> &str {
        match self {
            Cluster::Double { namespace, .. } | Cluster::Real { namespace, .. } => namespace,
        }
    }

    /// A second namespace of the test's own (cross-namespace cases).
    pub fn ns2(&self) -> String {
        format!("{}-b", self.ns())
    }

    /// The double, for tests that inject faults; `None` against a real
    /// server (those tests say so and return).
    pub fn double(&self) -> Option<&KubeApi> {
        match self {
            Cluster::Double { api, .. } => Some(api),
            Cluster::Real { .. } => None,
        }
    }

    /// A listener where the controller can reach a backend and the API
    /// server accepts its address in an EndpointSlice.
    pub async fn backend_listener(&self) -> TcpListener {
        match self {
            Cluster::Double { .. } => TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            Cluster::Real { host, .. } => host.listener(),
        }
    }

    /// An echo backend at such an address.
    pub async fn echo(&self, name: &str) -> Backend {
        Backend::echo_on(self.backend_listener().await, name)
    }

    /// Creates or replaces `obj` (in the test's namespace unless it names
    /// one).
    pub async fn apply(&self, mut obj: Value) {
        if obj["metadata"]["namespace"].is_null() {
            obj["metadata"]["namespace"] = Value::from(self.ns());
        }
        match self {
            Cluster::Double { api, .. } => {
                api.apply(obj);
            }
            Cluster::Real { .. } => {
                // Without a selector, and marked as ours, so the cluster's
                // own EndpointSlice controller leaves our slices alone.
                if obj["kind"] == "Service" {
                    if let Some(spec) = obj["spec"].as_object_mut() {
                        spec.remove("selector");
                    }
                }
                if obj["kind"] == "EndpointSlice" {
                    obj["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] =
                        Value::from("switchyard-tests");
                }
                self.server_apply(obj).await;
            }
        }
    }

    /// Deletes an object of the test's namespace.
    pub async fn delete(&self, api_version: &str, kind: &str, name: &str) {
        match self {
            Cluster::Double { api, namespace } => {
                api.delete(api_version, kind, namespace, name);
            }
            Cluster::Real {
                client, namespace, ..
            } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &resource(api_version, kind));
                api.delete(name, &DeleteParams::default())
                    .await
                    .expect("delete");
            }
        }
    }

    /// A route's `.status`, if any.
    pub async fn route_status(&self, name: &str) -> Option<Value> {
        self.route_status_in(self.ns(), name).await
    }

    /// A route's `.status` in `namespace`.
    pub async fn route_status_in(&self, namespace: &str, name: &str) -> Option<Value> {
        match self {
            Cluster::Double { api, .. } => api
                .get(
                    "switchyard.dev/v1alpha1",
                    "LoadBalancerRoute",
                    namespace,
                    name,
                )
                .and_then(|o| o.get("status").cloned()),
            Cluster::Real { client, .. } => {
                let api: Api<DynamicObject> = Api::namespaced_with(
                    client.clone(),
                    namespace,
                    &resource("switchyard.dev/v1alpha1", "LoadBalancerRoute"),
                );
                let obj = api.get_opt(name).await.expect("get route")?;
                obj.data.get("status").cloned()
            }
        }
    }

    /// Waits until the route's condition `kind` has `status` and `reason`;
    /// returns the status.
    pub async fn wait_condition(
        &self,
        route: &str,
        kind: &str,
        status: &str,
        reason: &str,
    ) -> Value {
        self.wait_condition_in(self.ns(), route, kind, status, reason)
            .await
    }

    /// Like [`Cluster::wait_condition`], for a route in `namespace`.
    pub async fn wait_condition_in(
        &self,
        namespace: &str,
        route: &str,
        kind: &str,
        status: &str,
        reason: &str,
    ) -> Value {
        let what = format!("{namespace}/{route}: condition {kind}={status} ({reason})");
        wait_until(&what, CLUSTER_DEADLINE, || async {
            self.route_status_in(namespace, route)
                .await
                .is_some_and(|s| has_condition(&s, kind, status, reason))
        })
        .await;
        self.route_status_in(namespace, route)
            .await
            .expect("status")
    }

    async fn server_apply(&self, obj: Value) {
        let Cluster::Real { client, .. } = self else {
            return;
        };
        let api_version = obj["apiVersion"].as_str().expect("apiVersion").to_owned();
        let kind = obj["kind"].as_str().expect("kind").to_owned();
        let name = obj["metadata"]["name"].as_str().expect("name").to_owned();
        let ar = resource(&api_version, &kind);
        let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        api.patch(
            &name,
            &PatchParams::apply("switchyard-tests").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Cluster::Real {
            client, namespace, ..
        } = self
        else {
            return;
        };
        let (client, namespace) = (client.clone(), namespace.clone());
        // Drop cannot await: clean up on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
                    for ns in [namespace.clone(), format!("{namespace}-b")] {
                        let _ = api.delete(&ns, &DeleteParams::default()).await;
                    }
                });
            }
        })
        .join();
    }
}

fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "LoadBalancerRoute" => "loadbalancerroutes",
        "Service" => "services",
        "EndpointSlice" => "endpointslices",
        "Lease" => "leases",
        "Namespace" => "namespaces",
        "Secret" => "secrets",
        "ConfigMap" => "configmaps",
        "CustomResourceDefinition" => "customresourcedefinitions",
        other => panic!("no plural known for {other}"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Whether `status.conditions` has `kind` with `status` and `reason`.
pub fn has_condition(status: &Value, kind: &str, want: &str, reason: &str) -> bool {
    status["conditions"].as_array().is_some_and(|conditions| {
        conditions
            .iter()
            .any(|c| c["type"] == kind && c["status"] == want && c["reason"] == reason)
    })
}

#[allow(unused_imports)]
pub use super::controller::Controller;
