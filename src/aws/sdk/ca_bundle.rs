//! The CA bundle (`AWS_CA_BUNDLE` or a profile's `ca_bundle`): read, every certificate
//! checked as rustls (webpki) would check a trust anchor, and re-encoded as clean PEM, so a
//! bad bundle is an error naming the file instead of a panic at the first connection.
//!
//! Must not: read any file but the one it is given, or trust anything the SDK would not.

use super::connector::ConnectorError;
use std::path::Path;

/// The certificates of a PEM bundle, each checked and re-encoded as clean PEM.
///
/// The SDK parses the bundle only when the first request opens a connection, and panics on
/// a malformed one, so everything is checked here first: the file is readable, has at least
/// one `CERTIFICATE` block, each block is valid base64 and a DER X.509 certificate in the
/// shape rustls (webpki) accepts as a trust anchor. Other blocks (keys, CRLs) are skipped,
/// as the SDK skips them.
pub(super) fn load_ca_bundle(path: &Path) -> Result<Vec<Vec<u8>>, ConnectorError> {
    let bytes = std::fs::read(path).map_err(|source| ConnectorError::CaBundleUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| ConnectorError::CaBundleInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| invalid("it is not a text (PEM) file".to_string()))?;
    let certificates = pem_certificates(text).map_err(invalid)?;
    if certificates.is_empty() {
        return Err(invalid(
            "it holds no `-----BEGIN CERTIFICATE-----` block".to_string(),
        ));
    }
    certificates
        .into_iter()
        .enumerate()
        .map(|(i, der)| {
            check_certificate_der(&der).map_err(|what| {
                invalid(format!(
                    "certificate {} is not a valid X.509 certificate ({what})",
                    i + 1
                ))
            })?;
            Ok(pem_encode(&der))
        })
        .collect()
}

/// The DER bytes of every `CERTIFICATE` block of a PEM text.
fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, usize)> = None; // (label, base64, first line)
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        match &mut open {
            None => {
                if let Some(label) = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    open = Some((label.to_string(), String::new(), n + 1));
                }
            }
            Some((label, body, first)) => {
                if let Some(end) = line
                    .strip_prefix("-----END ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    if end != label {
                        return Err(format!(
                            "the block begun on line {first} as {label} ends as {end}"
                        ));
                    }
                    if label == "CERTIFICATE" {
                        let der =
                            aws_smithy_types::base64::decode(body.as_str()).map_err(|_| {
                                format!("the certificate on line {first} is not valid base64")
                            })?;
                        out.push(der);
                    }
                    open = None;
                } else if !line.contains(':') {
                    // RFC 1421 headers ("Proc-Type: ...") are not base64; skip them.
                    body.push_str(line);
                }
            }
        }
    }
    match open {
        Some((label, _, first)) => Err(format!(
            "the {label} block begun on line {first} has no END line"
        )),
        None => Ok(out),
    }
}

pub(super) fn pem_encode(der: &[u8]) -> Vec<u8> {
    let b64 = aws_smithy_types::base64::encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem.into_bytes()
}

/// One DER tag-length-value from the front of `input`.
fn der_read<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags never occur in certificates
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None; // indefinite lengths are BER, not DER; > 16 MiB is not a certificate
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let (value, after) = rest.split_at(len);
    *input = after;
    Some((tag, value))
}

/// The structure webpki checks before it accepts a certificate as a trust anchor
/// (`anchor_from_trusted_cert`): Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
/// signatureValue }, a tbsCertificate of v1 or v3 fields in order with no unique ids, the
/// same signature algorithm inside and out, and well-formed extensions.
fn check_certificate_der(der: &[u8]) -> Result<(), &'static str> {
    const SEQUENCE: u8 = 0x30;
    let mut input = der;
    let (tag, cert) = der_read(&mut input).ok_or("not DER")?;
    if tag != SEQUENCE || !input.is_empty() {
        return Err("not a DER SEQUENCE");
    }
    let mut cert = cert;
    let (tbs_tag, tbs) = der_read(&mut cert).ok_or("truncated")?;
    let (alg_tag, alg) = der_read(&mut cert).ok_or("no signature algorithm")?;
    let (sig_tag, _) = der_read(&mut cert).ok_or("no signature")?;
    if tbs_tag != SEQUENCE || alg_tag != SEQUENCE || sig_tag != 0x03 || !cert.is_empty() {
        return Err("not a certificate");
    }
    if tbs.len() > 0xffff {
        return Err("too large");
    }
    let mut tbs = tbs;
    let mut version = 0;
    if tbs.first() == Some(&0xa0) {
        let (_, explicit) = der_read(&mut tbs).ok_or("bad version")?;
        let mut explicit = explicit;
        match der_read(&mut explicit) {
            Some((0x02, [v])) if explicit.is_empty() => version = *v,
            _ => return Err("bad version"),
        }
    }
    if version != 0 && version != 2 {
        return Err("only X.509 v1 and v3 are supported");
    }
    let (serial_tag, _) = der_read(&mut tbs).ok_or("no serial number")?;
    let (inner_alg_tag, inner_alg) = der_read(&mut tbs).ok_or("no signature algorithm")?;
    if serial_tag != 0x02 || inner_alg_tag != SEQUENCE {
        return Err("bad serial number or algorithm");
    }
    if inner_alg != alg {
        return Err("the signature algorithms differ");
    }
    for what in ["no issuer", "no validity", "no subject", "no public key"] {
        match der_read(&mut tbs) {
            Some((SEQUENCE, _)) => {}
            _ => return Err(what),
        }
    }
    if tbs.is_empty() {
        return Ok(());
    }
    let (ext_tag, extensions) = der_read(&mut tbs).ok_or("bad extensions")?;
    if ext_tag != 0xa3 || version != 2 || !tbs.is_empty() {
        return Err("unexpected fields after the public key");
    }
    let mut extensions = extensions;
    let (list_tag, list) = der_read(&mut extensions).ok_or("bad extensions")?;
    if list_tag != SEQUENCE || !extensions.is_empty() {
        return Err("bad extensions");
    }
    let mut list = list;
    while !list.is_empty() {
        let (tag, ext) = der_read(&mut list).ok_or("bad extension")?;
        let mut ext = ext;
        let ok = tag == SEQUENCE
            && matches!(der_read(&mut ext), Some((0x06, oid)) if !oid.is_empty())
            && {
                if ext.first() == Some(&0x01) {
                    matches!(der_read(&mut ext), Some((0x01, [0x00 | 0xff])))
                } else {
                    true
                }
            }
            && matches!(der_read(&mut ext), Some((0x04, _)))
            && ext.is_empty();
        if !ok {
            return Err("bad extension");
        }
    }
    Ok(())
}
