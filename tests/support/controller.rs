//! `Controller`: `switchyard::controller::run` in-process against a
//! [`Cluster`], serving on 127.0.0.1:0.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::cluster::Cluster;

/// A controller under test, serving on 127.0.0.1:0.
pub struct Controller {
    /// The proxy.
    pub addr: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    /// The TLS listener, when started with [`Controller::start_tls`].
    pub tls_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), switchyard::controller::Error>>>,
}

impl Controller {
    /// Starts a controller against `cluster` named `identity`, watching the
    /// test's namespace; `tweak` adjusts the options.
    pub async fn start(
        cluster: &Cluster,
        identity: &str,
        tweak: impl FnOnce(&mut switchyard::controller::Options),
    ) -> Controller {
        Controller::start_inner(cluster, identity, None, tweak).await
    }

    /// Like [`Controller::start`], with a TLS listener on `127.0.0.1:0`
    /// (`tls_addr`) and these TLS settings (`listener` set to true).
    pub async fn start_tls(
        cluster: &Cluster,
        identity: &str,
        tls: switchyard::snapshot::TlsSettings,
        tweak: impl FnOnce(&mut switchyard::controller::Options),
    ) -> Controller {
        Controller::start_inner(cluster, identity, Some(tls), tweak).await
    }

    async fn start_inner(
        cluster: &Cluster,
        identity: &str,
        tls: Option<switchyard::snapshot::TlsSettings>,
        tweak: impl FnOnce(&mut switchyard::controller::Options),
    ) -> Controller {
        let tls_listener = match &tls {
            Some(_) => Some(TcpListener::bind("127.0.0.1:0").await.expect("bind TLS")),
            None => None,
        };
        let tls_addr = tls_listener.as_ref().map(|l| l.local_addr().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let (addr, admin_addr) = (listener.local_addr().unwrap(), admin.local_addr().unwrap());
        let mut options = switchyard::controller::Options {
            source: switchyard::source::kube::Options {
                namespaces: vec![cluster.ns().to_owned(), cluster.ns2()],
                allow_static_backends: false,
                lease: switchyard::source::kube::LeaseOptions {
                    name: "switchyard".to_owned(),
                    namespace: cluster.ns().to_owned(),
                    identity: identity.to_owned(),
                    duration: Duration::from_secs(15),
                    renew_every: Duration::from_millis(200),
                },
                tls: tls
                    .map(|tls| switchyard::snapshot::TlsSettings {
                        listener: true,
                        ..tls
                    })
                    .unwrap_or_default(),
                status_pacing: Default::default(),
            },
            serve: switchyard::proxy::ServeOptions {
                drain_timeout: Duration::from_secs(2),
                ..Default::default()
            },
        };
        tweak(&mut options);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switchyard::controller::run(
            cluster.client(),
            options,
            switchyard::listeners::Listeners {
                proxy: listener,
                tls: tls_listener,
                admin,
            },
            async move {
                let _ = stopped.await;
            },
        ));
        Controller {
            addr,
            admin: admin_addr,
            tls_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the controller and returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), switchyard::controller::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        super::within("the controller to stop", task)
            .await
            .expect("controller task")
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
