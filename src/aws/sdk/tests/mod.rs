//! Tests of the SDK layer, without the network (an in-memory HTTP client, [`Capture`]) or
//! over 127.0.0.1 only (a tiny HTTP server, [`serve`]): one file per job of the layer. This
//! file holds what they share: credentials, canned AWS answers, and the two fake servers.

mod account;
mod ca_bundle;
mod calls;
mod endpoints;
mod errors;
mod logs;

use super::*;
use crate::aws::{
    AccessKeyMeta, Action, Connector, Credentials, ErrorKind, Iam, KeyStatus, LastUsed, MfaDevice,
    Target,
};
use crate::secret::Secret;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY_ID: &str = "AKIATARGETKEY0000001";
const SECRET: &str = "LongTermSecretOfTheTargetKey/0123456789+";
const CREATED_SECRET: &str = "SecretOfTheNewKeyFromCreateAccessKey/abc";
const SESSION_KEY_ID: &str = "ASIASESSIONKEY000001";
const SESSION_SECRET: &str = "SecretOfTheMfaSessionFromGetSessionTok+n";
const SESSION_TOKEN: &str =
    "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENvalue0123456789abcdefghijklmnopqrstuvwxyzSECRETPART";
const MFA_CODE: &str = "735291";
const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

fn target(region: &str, endpoint: Option<&str>) -> Target {
    Target {
        credentials: Credentials::long_term(KEY_ID, Secret::new(SECRET)),
        region: region.to_string(),
        iam_endpoint: endpoint.map(str::to_string),
        sts_endpoint: endpoint.map(str::to_string),
    }
}

fn session_target(endpoint: Option<&str>) -> Target {
    Target {
        credentials: Credentials {
            access_key_id: SESSION_KEY_ID.to_string(),
            secret_access_key: Secret::new(SESSION_SECRET),
            session_token: Some(Secret::new(SESSION_TOKEN)),
        },
        ..target("us-east-1", endpoint)
    }
}

fn test_settings() -> ConnectorSettings {
    ConnectorSettings {
        initial_backoff: Duration::from_millis(10),
        proxy_from_env: false,
        ..ConnectorSettings::default()
    }
}

/// A form field of an awsQuery request body.
fn field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn iam_answer(action: &str, result: &str) -> String {
    format!(
        "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>\
             </{action}Response>"
    )
}

/// Canned AWS answers, chosen by the request's `Action`.
fn canned(body: &str) -> (u16, String) {
    let action = field(body, "Action").unwrap_or_default();
    let answer = match action {
        "GetCallerIdentity" => iam_answer(
            action,
            "<Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDAEXAMPLEUSERID0001</UserId>\
                 <Account>123456789012</Account>",
        ),
        "ListAccessKeys" if field(body, "Marker").is_none() => iam_answer(
            action,
            "<AccessKeyMetadata><member><UserName>alice</UserName><AccessKeyId>AKIATARGETKEY0000001</AccessKeyId>\
                 <Status>Active</Status><CreateDate>2026-11-22T04:17:28.049038Z</CreateDate></member></AccessKeyMetadata>\
                 <IsTruncated>true</IsTruncated><Marker>page-2</Marker>",
        ),
        "ListAccessKeys" => iam_answer(
            action,
            "<AccessKeyMetadata><member><UserName>alice</UserName><AccessKeyId>AKIAOTHERKEY00000002</AccessKeyId>\
                 <Status>Inactive</Status><CreateDate>2025-01-02T03:04:05Z</CreateDate></member></AccessKeyMetadata>",
        ),
        "CreateAccessKey" => iam_answer(
            action,
            &format!(
                "<AccessKey><UserName>alice</UserName><AccessKeyId>AKIANEWKEY0000000003</AccessKeyId>\
                     <Status>Active</Status><SecretAccessKey>{CREATED_SECRET}</SecretAccessKey>\
                     <CreateDate>2026-11-22T05:00:00Z</CreateDate></AccessKey>"
            ),
        ),
        "UpdateAccessKey" | "DeleteAccessKey" => format!(
            "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata>\
                 <RequestId>x</RequestId></ResponseMetadata></{action}Response>"
        ),
        "GetAccessKeyLastUsed" if field(body, "AccessKeyId") == Some("AKIAOTHERKEY00000002") => {
            iam_answer(
                action,
                "<UserName>alice</UserName><AccessKeyLastUsed><LastUsedDate>2026-11-20T10:00:00Z</LastUsedDate>\
                 <ServiceName>s3</ServiceName><Region>eu-west-1</Region></AccessKeyLastUsed>",
            )
        }
        "GetAccessKeyLastUsed" => iam_answer(
            action,
            "<UserName>alice</UserName><AccessKeyLastUsed><ServiceName>N/A</ServiceName><Region>N/A</Region>\
                 </AccessKeyLastUsed>",
        ),
        "ListMFADevices" => iam_answer(
            action,
            &format!(
                "<MFADevices><member><UserName>alice</UserName><SerialNumber>{MFA_SERIAL}</SerialNumber>\
                     <EnableDate>2026-01-02T03:04:05Z</EnableDate></member></MFADevices><IsTruncated>false</IsTruncated>"
            ),
        ),
        "GetSessionToken" => iam_answer(
            action,
            &format!(
                "<Credentials><AccessKeyId>{SESSION_KEY_ID}</AccessKeyId><SecretAccessKey>{SESSION_SECRET}\
                     </SecretAccessKey><SessionToken>{SESSION_TOKEN}</SessionToken>\
                     <Expiration>2026-11-22T17:00:00Z</Expiration></Credentials>"
            ),
        ),
        _ => {
            return (
                400,
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>unknown</Message>\
                     </Error><RequestId>x</RequestId></ErrorResponse>"
                    .to_string(),
            );
        }
    };
    (200, answer)
}

/// One request as the HTTP client saw it.
#[derive(Clone, Debug)]
struct Seen {
    uri: String,
    authorization: String,
    security_token: Option<String>,
    body: String,
}

type Responder = Arc<dyn Fn(&str) -> (u16, String) + Send + Sync>;

/// An HTTP client that answers in memory and records each request: no network at all.
#[derive(Clone)]
struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
    respond: Responder,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capture")
    }
}

impl Capture {
    fn new(respond: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> Capture {
        Capture {
            seen: Arc::default(),
            respond: Arc::new(respond),
        }
    }
    fn connector(&self, settings: ConnectorSettings) -> SdkConnector {
        SdkConnector::with_http_client(settings, SharedHttpClient::new(self.clone()))
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn bodies(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.body).collect()
    }
    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

impl HttpConnector for Capture {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
        let header = |name: &str| request.headers().get(name).map(str::to_string);
        self.seen.lock().unwrap().push(Seen {
            uri: request.uri().to_string(),
            authorization: header("authorization").unwrap_or_default(),
            security_token: header("x-amz-security-token"),
            body: body.clone(),
        });
        let (status, answer) = (self.respond)(&body);
        let response =
            HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(answer));
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Capture {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that answers each request through `respond`
/// (or never, when it returns `None`). Returns its URL and the bodies it received.
async fn serve(
    respond: impl Fn(&str) -> Option<(u16, String)> + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let respond = Arc::new(respond);
    let log = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (respond, log) = (respond.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
                log.lock().unwrap().push(body.clone());
                let Some((status, answer)) = respond(&body) else {
                    // Hold the connection open without answering.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, bodies)
}
