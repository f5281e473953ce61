//! A private certificate authority made in the test, for TLS to a real
//! Prometheus on 127.0.0.1.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A private CA and a server certificate it signed, all as PEM.
pub struct PrivateCa {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

/// A fresh CA, and a certificate from it for `127.0.0.1` and `localhost`.
pub fn private_ca() -> PrivateCa {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "canary-gate test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server_params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("server params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    PrivateCa {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}
