//! The HTTPS flags of `run` and `controller`.

use std::net::SocketAddr;

use clap::Args;
use switchyard::snapshot::{ClientAuth, ObjectKey, TlsSettings, TlsVersion};

/// The HTTPS flags both `run` and `controller` take.
#[derive(Args)]
pub struct TlsArgs {
    /// Where the proxy serves HTTPS (e.g. 0.0.0.0:8443); no HTTPS without
    /// it. Certificates come from the routes' `tls.secretName` Secrets.
    #[arg(long)]
    pub tls_listen: Option<SocketAddr>,
    /// The certificate (a kubernetes.io/tls Secret, NAMESPACE/NAME) for
    /// names no route's certificate covers; without it such names fail
    /// the handshake (unrecognized_name).
    #[arg(long, value_parser = parse_object_key)]
    default_certificate: Option<ObjectKey>,
    /// The oldest TLS version accepted: 1.2 or 1.3.
    #[arg(long, default_value = "1.2", value_parser = parse_tls_version)]
    tls_min_version: TlsVersion,
    /// Verify client certificates against this CA bundle (NAMESPACE/NAME
    /// of a ConfigMap or Secret with `ca.crt`).
    #[arg(long, value_parser = parse_object_key)]
    tls_client_ca: Option<ObjectKey>,
    /// With --tls-client-ca: `require` a valid client certificate
    /// (Gateway API's AllowValidOnly) or make it `optional`
    /// (AllowInsecureFallback: none is fine, an invalid one is not).
    #[arg(long, default_value = "require", value_parser = parse_client_auth)]
    tls_client_auth: ClientAuth,
    /// The port plain-HTTP requests for TLS routes are redirected to (the
    /// HTTPS port clients see; 443 is left out of the URL).
    #[arg(long, default_value_t = 443)]
    https_redirect_port: u16,
}

impl TlsArgs {
    /// The TLS listener's settings these flags set.
    pub fn settings(&self) -> TlsSettings {
        TlsSettings {
            listener: self.tls_listen.is_some(),
            default_certificate: self.default_certificate.clone(),
            client_ca: self.tls_client_ca.clone(),
            client_auth: self.tls_client_auth,
            min_version: self.tls_min_version,
            redirect_port: self.https_redirect_port,
        }
    }
}

/// `NAMESPACE/NAME`.
fn parse_object_key(text: &str) -> Result<ObjectKey, String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(format!("{text:?} is not NAMESPACE/NAME")),
    }
}

/// `1.2` or `1.3`.
fn parse_tls_version(text: &str) -> Result<TlsVersion, String> {
    match text {
        "1.2" => Ok(TlsVersion::Tls12),
        "1.3" => Ok(TlsVersion::Tls13),
        _ => Err(format!(
            "{text:?} is not a TLS version this proxy speaks (1.2, 1.3)"
        )),
    }
}

/// `require` or `optional`.
fn parse_client_auth(text: &str) -> Result<ClientAuth, String> {
    match text {
        "require" => Ok(ClientAuth::Require),
        "optional" => Ok(ClientAuth::Optional),
        _ => Err(format!("{text:?} is neither require nor optional")),
    }
}
