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
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// The rustls client set-up for a metric store: the system's trust, and also
/// `extra_roots`.
pub(super) fn client_config(extra_roots: Vec<CertificateDer<'static>>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(LazyVerifier {
        provider: provider.clone(),
        extra_roots,
        verifier: OnceLock::new(),
    });
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
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
