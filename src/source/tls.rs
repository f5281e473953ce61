//! TLS to the metric store: rustls with the aws-lc-rs provider (Cargo.toml
//! says why), the server's certificate checked by the platform's verifier
//! against the system's CA certificates and any the caller adds.
//!
//! The system's CAs rather than a list compiled in (webpki-roots): a metric
//! store is usually internal, its certificate signed by a private CA that
//! operators install in the system store or mount into the container, and the
//! system store is updated with the OS, not by rebuilding canary-gate. It is
//! also what reqwest does by default, so whom canary-gate trusts is unchanged.
//!
//! Part of the source stage: only [`super::prometheus`] uses it.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

use super::config::TlsSettings;

/// The rustls client set-up for a metric store, from a source's settings:
/// the system's trust and the source's CA bundle, its client certificate
/// when it has one, and no check at all of the server's certificate only
/// when `insecure_skip_verify` says so.
pub(super) fn client_config(settings: &TlsSettings) -> Result<rustls::ClientConfig, String> {
    let extra_roots = match &settings.ca_pem {
        Some(pem) => read_pem_certificates(pem).map_err(|e| format!("the CA bundle: {e}"))?,
        None => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(LazyVerifier {
        provider: provider.clone(),
        extra_roots,
        verifier: OnceLock::new(),
        insecure_skip_verify: settings.insecure_skip_verify,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &settings.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_pem, key_pem)) => {
            let chain = read_pem_certificates(cert_pem)
                .map_err(|e| format!("the client certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.reveal().as_bytes())
                .map_err(|e| format!("the client key is not a PEM private key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate and key do not go together: {e}"))
        }
    }
}

/// The CA certificates in the PEM text `pem`, at least one.
pub(super) fn read_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unreadable PEM certificate: {e}"))?;
    if certificates.is_empty() {
        return Err("no PEM certificate (`-----BEGIN CERTIFICATE-----`) found".into());
    }
    Ok(certificates)
}

/// The platform's verifier, built at the first certificate it checks.
///
/// Building it reads every system CA certificate (some 150 files on Debian),
/// which cost `judge` a quarter of its CPU against a plain-http store that
/// never needs them. Signatures are checked with the provider's algorithms,
/// as the platform verifier does, so they need no certificates.
#[derive(Debug)]
struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    extra_roots: Vec<CertificateDer<'static>>,
    verifier: OnceLock<Result<Verifier, rustls::Error>>,
    /// Take any certificate for the server's (the handshake's signatures are
    /// still checked against it): `insecure_skip_verify`.
    insecure_skip_verify: bool,
}

impl LazyVerifier {
    fn verifier(&self) -> Result<&Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                Verifier::new_with_extra_roots(
                    self.extra_roots.iter().cloned(),
                    self.provider.clone(),
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.insecure_skip_verify {
            return Ok(ServerCertVerified::assertion());
        }
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A CA file without a certificate is refused, not read as "trust nothing more".
    #[test]
    fn a_pem_file_without_a_certificate_is_refused() {
        let error = read_pem_certificates(b"not a certificate\n").expect_err("no certificate");
        assert!(error.contains("no PEM certificate"), "{error}");
    }
}
