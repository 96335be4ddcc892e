//! [`AccountIam`] on the official SDK: IAM, STS and Organizations clients bound to one set of
//! credentials, built by [`SdkConnector::connect_account`] exactly as
//! [`Connector::connect`] builds the key clients (explicit
//! credentials, the same HTTP client, retries and timeouts).
//!
//! Every list follows its marker (`NextToken` for Organizations) to the last page, up to
//! [`MAX_ACCOUNT_PAGES`]. Each call logs one `debug!` line, as the key calls do.
//!
//! Must not: retry beyond the SDK's standard retries (in particular never re-send a create:
//! see [`AccountIam`]), print, or log a secret.

use super::{Endpoints, SdkClient, SdkConnector, from_sdk, malformed, next_marker, timestamp};
use crate::aws::account::{
    AccountAction, AccountIam, CredentialReport, IamUser, ManagedPolicy, OrgAccount, PolicyVersion,
    ReportState, decode_policy_document,
};
use crate::aws::{
    AccessKeyMeta, Action, AwsError, CallerIdentity, Connector, Credentials, ErrorKind, Iam,
    LastUsed, Target,
};
use crate::secret::Secret;
use std::fmt;
use std::time::Instant;
use tracing::debug;

/// More pages than any account has (ListUsers pages hold up to 1,000 users): a guard against
/// a server that keeps answering with a new marker.
pub const MAX_ACCOUNT_PAGES: usize = 10_000;

/// IAM, STS and Organizations clients bound to one set of credentials.
#[derive(Clone)]
pub struct SdkAccountClient {
    keys: SdkClient,
    orgs: aws_sdk_organizations::Client,
    orgs_endpoint: String,
}

impl fmt::Debug for SdkAccountClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkAccountClient")
            .field("keys", &self.keys)
            .field("orgs_endpoint", &self.orgs_endpoint)
            .finish()
    }
}

impl SdkConnector {
    /// Account-wide clients for `target`; `orgs_endpoint` overrides the Organizations endpoint
    /// (`AWS_ENDPOINT_URL_ORGANIZATIONS`, `AWS_ENDPOINT_URL`, resolved by the caller).
    pub fn connect_account(
        &self,
        target: &Target,
        orgs_endpoint: Option<&str>,
    ) -> SdkAccountClient {
        let keys = self.connect(target);
        let config = self.sdk_config(target);
        let mut orgs = aws_sdk_organizations::config::Builder::from(&config)
            .retry_classifier(super::NoThrottlingRetries);
        if let Some(url) = orgs_endpoint {
            orgs = orgs.endpoint_url(url);
        }
        SdkAccountClient {
            keys,
            orgs: aws_sdk_organizations::Client::from_conf(orgs.build()),
            orgs_endpoint: orgs_endpoint
                .map(str::to_string)
                .unwrap_or_else(|| "the Organizations endpoint".to_string()),
        }
    }
}

/// One attempt only: the SDK's standard retries would re-send a create whose answer was lost
/// (a connection reset after the request went out), and CreatePolicyVersion would then make a
/// second version. The callers reconcile by reading the state instead (see [`AccountIam`]).
fn one_attempt() -> aws_sdk_iam::config::Builder {
    aws_sdk_iam::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
}

fn act(a: AccountAction) -> Action {
    Action::Account(a)
}

/// `Ok(None)` for NoSuchEntity.
fn none_if_missing<T>(result: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NoSuchEntity => Ok(None),
        Err(e) => Err(e),
    }
}

impl SdkAccountClient {
    fn iam(&self) -> &aws_sdk_iam::Client {
        &self.keys.iam
    }

    fn endpoints(&self) -> &Endpoints {
        &self.keys.endpoints
    }

    fn err<E>(
        &self,
        a: AccountAction,
    ) -> impl Fn(
        aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    ) -> AwsError
    + '_
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        move |e| {
            let endpoint = match a {
                AccountAction::ListAccounts => &self.orgs_endpoint,
                AccountAction::AssumeRole => &self.endpoints().sts,
                _ => &self.endpoints().iam,
            };
            from_sdk(act(a), e, endpoint)
        }
    }

    fn log<T>(
        &self,
        a: AccountAction,
        subject: &str,
        started: Instant,
        result: &Result<T, AwsError>,
    ) {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let signer = &self.keys.signer;
        match result {
            Ok(_) => debug!(action = a.as_str(), key = %signer, subject, elapsed_ms, "AWS call ok"),
            Err(e) => debug!(
                action = a.as_str(),
                key = %signer,
                subject,
                elapsed_ms,
                kind = ?e.kind,
                code = e.code.as_deref().unwrap_or("-"),
                status = e.http_status.unwrap_or(0),
                "AWS call failed"
            ),
        }
    }

    /// Every page of a marker-paginated IAM list.
    async fn all_pages<T, F, Fut>(&self, a: AccountAction, page: F) -> Result<Vec<T>, AwsError>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, bool, Option<String>), AwsError>>,
    {
        let mut items = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_ACCOUNT_PAGES {
            let (mut got, truncated, next) = page(marker.clone()).await?;
            items.append(&mut got);
            match next_marker(truncated, next.as_deref(), marker.as_deref()) {
                Some(next) => marker = Some(next),
                None => return Ok(items),
            }
        }
        Err(malformed(act(a), "more than 10,000 pages"))
    }
}

impl AccountIam for SdkAccountClient {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        self.keys.caller_identity().await
    }

    async fn list_users(&self) -> Result<Vec<IamUser>, AwsError> {
        let a = AccountAction::ListUsers;
        let started = Instant::now();
        let result = self
            .all_pages(a, |marker| async move {
                let out = self
                    .iam()
                    .list_users()
                    .max_items(1000)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(self.err(a))?;
                let users = out
                    .users()
                    .iter()
                    .map(|u| IamUser {
                        name: u.user_name().to_string(),
                        arn: u.arn().to_string(),
                        created: timestamp(u.create_date()),
                    })
                    .collect();
                Ok((users, out.is_truncated(), out.marker().map(str::to_string)))
            })
            .await;
        self.log(a, "-", started, &result);
        result
    }

    async fn list_user_tags(&self, user: &str) -> Result<Vec<(String, String)>, AwsError> {
        let a = AccountAction::ListUserTags;
        let started = Instant::now();
        let result = self
            .all_pages(a, |marker| async move {
                let out = self
                    .iam()
                    .list_user_tags()
                    .user_name(user)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(self.err(a))?;
                let tags = out
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                Ok((tags, out.is_truncated(), out.marker().map(str::to_string)))
            })
            .await;
        self.log(a, user, started, &result);
        result
    }

    async fn list_user_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        self.keys.list_access_keys(user).await
    }

    async fn key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError> {
        self.keys.access_key_last_used(key_id).await
    }

    async fn list_groups_for_user(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let a = AccountAction::ListGroupsForUser;
        let started = Instant::now();
        let result = self
            .all_pages(a, |marker| async move {
                let out = self
                    .iam()
                    .list_groups_for_user()
                    .user_name(user)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(self.err(a))?;
                let groups = out
                    .groups()
                    .iter()
                    .map(|g| g.group_name().to_string())
                    .collect();
                Ok((groups, out.is_truncated(), out.marker().map(str::to_string)))
            })
            .await;
        self.log(a, user, started, &result);
        result
    }

    async fn list_user_policies(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let a = AccountAction::ListUserPolicies;
        let started = Instant::now();
        let result = self
            .all_pages(a, |marker| async move {
                let out = self
                    .iam()
                    .list_user_policies()
                    .user_name(user)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(self.err(a))?;
                let names = out.policy_names().to_vec();
                Ok((names, out.is_truncated(), out.marker().map(str::to_string)))
            })
            .await;
        self.log(a, user, started, &result);
        result
    }

    async fn get_user_policy(&self, user: &str, name: &str) -> Result<Option<String>, AwsError> {
        let a = AccountAction::GetUserPolicy;
        let started = Instant::now();
        let result = none_if_missing(
            self.iam()
                .get_user_policy()
                .user_name(user)
                .policy_name(name)
                .send()
                .await
                .map(|out| decode_policy_document(out.policy_document()))
                .map_err(self.err(a)),
        );
        self.log(a, user, started, &result);
        result
    }

    async fn put_user_policy(
        &self,
        user: &str,
        name: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        let a = AccountAction::PutUserPolicy;
        let started = Instant::now();
        let result = self
            .iam()
            .put_user_policy()
            .user_name(user)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(self.err(a));
        self.log(a, user, started, &result);
        result
    }

    async fn generate_credential_report(&self) -> Result<ReportState, AwsError> {
        use aws_sdk_iam::types::ReportStateType;
        let a = AccountAction::GenerateCredentialReport;
        let started = Instant::now();
        let result = self
            .iam()
            .generate_credential_report()
            .send()
            .await
            .map_err(self.err(a))
            .map(|out| match out.state() {
                Some(ReportStateType::Complete) => ReportState::Complete,
                Some(ReportStateType::Started) => ReportState::Started,
                _ => ReportState::InProgress,
            });
        self.log(a, "-", started, &result);
        result
    }

    async fn get_credential_report(&self) -> Result<Option<CredentialReport>, AwsError> {
        let a = AccountAction::GetCredentialReport;
        let started = Instant::now();
        let result = match self.iam().get_credential_report().send().await {
            Ok(out) => {
                let csv = out
                    .content()
                    .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
                    .unwrap_or_default();
                Ok(Some(CredentialReport {
                    csv,
                    generated: out.generated_time().and_then(timestamp),
                }))
            }
            Err(e) => {
                let e = self.err(a)(e);
                match e.code.as_deref() {
                    Some("ReportNotPresent" | "ReportInProgress" | "ReportExpired") => Ok(None),
                    _ => Err(e),
                }
            }
        };
        self.log(a, "-", started, &result);
        result
    }

    async fn get_policy(&self, arn: &str) -> Result<Option<ManagedPolicy>, AwsError> {
        let a = AccountAction::GetPolicy;
        let started = Instant::now();
        let result = none_if_missing(
            self.iam()
                .get_policy()
                .policy_arn(arn)
                .send()
                .await
                .map_err(self.err(a))
                .map(|out| ManagedPolicy {
                    arn: arn.to_string(),
                    default_version: out
                        .policy()
                        .and_then(|p| p.default_version_id())
                        .map(str::to_string),
                }),
        );
        self.log(a, arn, started, &result);
        result
    }

    async fn create_policy(
        &self,
        name: &str,
        document: &str,
        description: &str,
    ) -> Result<ManagedPolicy, AwsError> {
        let a = AccountAction::CreatePolicy;
        let started = Instant::now();
        let result = async {
            let out = self
                .iam()
                .create_policy()
                .policy_name(name)
                .policy_document(document)
                .description(description)
                .customize()
                .config_override(one_attempt())
                .send()
                .await
                .map_err(self.err(a))?;
            let policy = out
                .policy()
                .ok_or_else(|| malformed(act(a), "no Policy (it may have been created)"))?;
            Ok(ManagedPolicy {
                arn: policy.arn().unwrap_or_default().to_string(),
                default_version: policy.default_version_id().map(str::to_string),
            })
        }
        .await;
        self.log(a, name, started, &result);
        result
    }

    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, AwsError> {
        let a = AccountAction::ListPolicyVersions;
        let started = Instant::now();
        let result = self
            .all_pages(a, |marker| async move {
                let out = self
                    .iam()
                    .list_policy_versions()
                    .policy_arn(arn)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(self.err(a))?;
                let versions = out
                    .versions()
                    .iter()
                    .filter_map(|v| {
                        Some(PolicyVersion {
                            id: v.version_id()?.to_string(),
                            is_default: v.is_default_version(),
                            created: v.create_date().and_then(timestamp),
                        })
                    })
                    .collect();
                Ok((
                    versions,
                    out.is_truncated(),
                    out.marker().map(str::to_string),
                ))
            })
            .await;
        self.log(a, arn, started, &result);
        result
    }

    async fn get_policy_version(&self, arn: &str, version: &str) -> Result<String, AwsError> {
        let a = AccountAction::GetPolicyVersion;
        let started = Instant::now();
        let result = async {
            let out = self
                .iam()
                .get_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await
                .map_err(self.err(a))?;
            let document = out
                .policy_version()
                .and_then(|v| v.document())
                .ok_or_else(|| malformed(act(a), "no Document"))?;
            Ok(decode_policy_document(document))
        }
        .await;
        self.log(a, arn, started, &result);
        result
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String, AwsError> {
        let a = AccountAction::CreatePolicyVersion;
        let started = Instant::now();
        let result = async {
            let out = self
                .iam()
                .create_policy_version()
                .policy_arn(arn)
                .policy_document(document)
                .set_as_default(true)
                .customize()
                .config_override(one_attempt())
                .send()
                .await
                .map_err(self.err(a))?;
            out.policy_version()
                .and_then(|v| v.version_id())
                .map(str::to_string)
                .ok_or_else(|| malformed(act(a), "no VersionId (it may have been created)"))
        }
        .await;
        self.log(a, arn, started, &result);
        result
    }

    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), AwsError> {
        let a = AccountAction::DeletePolicyVersion;
        let started = Instant::now();
        let result = self
            .iam()
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map(|_| ())
            .map_err(self.err(a));
        self.log(a, arn, started, &result);
        result
    }

    async fn get_group(&self, name: &str) -> Result<Option<String>, AwsError> {
        let a = AccountAction::GetGroup;
        let started = Instant::now();
        let result = none_if_missing(
            self.iam()
                .get_group()
                .group_name(name)
                .max_items(1)
                .send()
                .await
                .map_err(self.err(a))
                .map(|out| out.group().map(|g| g.arn().to_string()).unwrap_or_default()),
        );
        self.log(a, name, started, &result);
        result
    }

    async fn create_group(&self, name: &str) -> Result<String, AwsError> {
        let a = AccountAction::CreateGroup;
        let started = Instant::now();
        let result = self
            .iam()
            .create_group()
            .group_name(name)
            .customize()
            .config_override(one_attempt())
            .send()
            .await
            .map_err(self.err(a))
            .map(|out| out.group().map(|g| g.arn().to_string()).unwrap_or_default());
        self.log(a, name, started, &result);
        result
    }

    async fn list_attached_group_policies(&self, group: &str) -> Result<Vec<String>, AwsError> {
        let a = AccountAction::ListAttachedGroupPolicies;
        let started = Instant::now();
        let result = self
            .all_pages(a, |marker| async move {
                let out = self
                    .iam()
                    .list_attached_group_policies()
                    .group_name(group)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(self.err(a))?;
                let arns = out
                    .attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string))
                    .collect();
                Ok((arns, out.is_truncated(), out.marker().map(str::to_string)))
            })
            .await;
        self.log(a, group, started, &result);
        result
    }

    async fn attach_group_policy(&self, group: &str, policy_arn: &str) -> Result<(), AwsError> {
        let a = AccountAction::AttachGroupPolicy;
        let started = Instant::now();
        let result = self
            .iam()
            .attach_group_policy()
            .group_name(group)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(self.err(a));
        self.log(a, group, started, &result);
        result
    }

    async fn add_user_to_group(&self, group: &str, user: &str) -> Result<(), AwsError> {
        let a = AccountAction::AddUserToGroup;
        let started = Instant::now();
        let result = self
            .iam()
            .add_user_to_group()
            .group_name(group)
            .user_name(user)
            .send()
            .await
            .map(|_| ())
            .map_err(self.err(a));
        self.log(a, user, started, &result);
        result
    }

    async fn list_accounts(&self) -> Result<Vec<OrgAccount>, AwsError> {
        let a = AccountAction::ListAccounts;
        let started = Instant::now();
        let result = async {
            let mut accounts = Vec::new();
            let mut token: Option<String> = None;
            for _ in 0..MAX_ACCOUNT_PAGES {
                let out = self
                    .orgs
                    .list_accounts()
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(self.err(a))?;
                accounts.extend(out.accounts().iter().filter_map(|acc| {
                    #[allow(deprecated)]
                    let status = acc.status().map(|s| s.as_str().to_string());
                    Some(OrgAccount {
                        id: acc.id()?.to_string(),
                        name: acc.name().unwrap_or_default().to_string(),
                        status: status.unwrap_or_default(),
                    })
                }));
                match out.next_token() {
                    Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                        token = Some(t.to_string())
                    }
                    _ => return Ok(accounts),
                }
            }
            Err(malformed(act(a), "more than 10,000 pages"))
        }
        .await;
        self.log(a, "-", started, &result);
        result
    }

    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
    ) -> Result<Credentials, AwsError> {
        let a = AccountAction::AssumeRole;
        let started = Instant::now();
        let result = async {
            let out = self
                .keys
                .sts
                .assume_role()
                .role_arn(role_arn)
                .role_session_name(session_name)
                .send()
                .await
                .map_err(self.err(a))?;
            let c = out
                .credentials()
                .ok_or_else(|| malformed(act(a), "no Credentials"))?;
            Ok(Credentials {
                access_key_id: c.access_key_id().to_string(),
                secret_access_key: Secret::new(c.secret_access_key()),
                session_token: Some(Secret::new(c.session_token())),
            })
        }
        .await;
        self.log(a, role_arn, started, &result);
        result
    }
}

#[cfg(test)]
mod tests {
    //! The SDK calls against canned answers in memory: markers are followed to the last page,
    //! a repeated marker ends the listing, documents are decoded, "not there" is `None`.
    use super::*;
    use crate::aws::sdk::ConnectorSettings;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use std::sync::{Arc, Mutex};

    type Responder = Arc<dyn Fn(&str) -> (u16, String) + Send + Sync>;

    #[derive(Clone)]
    struct Stub {
        bodies: Arc<Mutex<Vec<String>>>,
        respond: Responder,
    }

    impl fmt::Debug for Stub {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Stub")
        }
    }

    impl HttpConnector for Stub {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let body =
                String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
            self.bodies.lock().unwrap().push(body.clone());
            let (status, answer) = (self.respond)(&body);
            HttpConnectorFuture::ready(Ok(HttpResponse::new(
                StatusCode::try_from(status).unwrap(),
                SdkBody::from(answer),
            )))
        }
    }

    impl HttpClient for Stub {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    fn field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
        body.split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }

    fn answer(action: &str, result: &str) -> String {
        format!(
            "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></{action}Response>"
        )
    }

    fn user(name: &str) -> String {
        format!(
            "<member><Path>/</Path><UserName>{name}</UserName><UserId>AIDA{name}</UserId>\
             <Arn>arn:aws:iam::123456789012:user/{name}</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>"
        )
    }

    fn canned(body: &str) -> (u16, String) {
        let action = field(body, "Action").unwrap_or_default();
        let marker = field(body, "Marker");
        let a = match (action, marker) {
            ("ListUsers", None) => answer(
                action,
                &format!(
                    "<Users>{}{}</Users><IsTruncated>true</IsTruncated><Marker>m1</Marker>",
                    user("a"),
                    user("b")
                ),
            ),
            ("ListUsers", Some("m1")) => answer(
                action,
                &format!(
                    "<Users>{}</Users><IsTruncated>true</IsTruncated><Marker>m2</Marker>",
                    user("c")
                ),
            ),
            ("ListUsers", Some(_)) => answer(
                action,
                &format!(
                    "<Users>{}</Users><IsTruncated>false</IsTruncated>",
                    user("d")
                ),
            ),
            ("ListUserTags", _) => answer(
                action,
                // Truncated with the same marker again: the listing ends there.
                "<Tags><member><Key>iam-keys:exempt</Key><Value>x</Value></member></Tags>\
                 <IsTruncated>true</IsTruncated><Marker>same</Marker>",
            ),
            ("GetUserPolicy", _) if field(body, "PolicyName") == Some("missing") => {
                return (
                    404,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code>\
                     <Message>The user policy with name missing cannot be found.</Message></Error>\
                     <RequestId>x</RequestId></ErrorResponse>"
                        .into(),
                );
            }
            ("GetUserPolicy", _) => answer(
                action,
                "<UserName>a</UserName><PolicyName>p</PolicyName>\
                 <PolicyDocument>%7B%22Version%22%3A%222012-10-17%22%7D</PolicyDocument>",
            ),
            ("CreateGroup" | "CreatePolicyVersion" | "ListGroupsForUser", _) => {
                return (
                    503,
                    "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>\
                     <Message>try later</Message></Error><RequestId>x</RequestId></ErrorResponse>"
                        .into(),
                );
            }
            ("GetCredentialReport", _) => {
                return (
                    410,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>ReportNotPresent</Code>\
                     <Message>not yet</Message></Error><RequestId>x</RequestId></ErrorResponse>"
                        .into(),
                );
            }
            _ => {
                return (
                    400,
                    "<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>"
                        .into(),
                );
            }
        };
        (200, a)
    }

    fn client() -> (SdkAccountClient, Arc<Mutex<Vec<String>>>) {
        client_with(1)
    }

    fn client_with(max_attempts: u32) -> (SdkAccountClient, Arc<Mutex<Vec<String>>>) {
        let stub = Stub {
            bodies: Arc::default(),
            respond: Arc::new(canned),
        };
        let bodies = stub.bodies.clone();
        let connector = SdkConnector::with_http_client(
            ConnectorSettings {
                proxy_from_env: false,
                max_attempts,
                initial_backoff: std::time::Duration::from_millis(1),
                ..ConnectorSettings::default()
            },
            SharedHttpClient::new(stub),
        );
        let target = Target {
            credentials: Credentials::long_term(
                "AKIAAUDITOR000000001",
                Secret::new("AuditorSecretAuditorSecretAuditorSecre01"),
            ),
            region: "us-east-1".into(),
            iam_endpoint: Some("http://127.0.0.1:9".into()),
            sts_endpoint: Some("http://127.0.0.1:9".into()),
        };
        (connector.connect_account(&target, None), bodies)
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn list_users_follows_markers_to_the_last_page() {
        let (client, bodies) = client();
        let users = run(client.list_users()).unwrap();
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert!(users[0].created.is_some());
        let bodies = bodies.lock().unwrap();
        assert_eq!(bodies.len(), 3);
        assert_eq!(field(&bodies[0], "Marker"), None);
        assert_eq!(field(&bodies[1], "Marker"), Some("m1"));
        assert_eq!(field(&bodies[2], "Marker"), Some("m2"));
        assert_eq!(field(&bodies[0], "MaxItems"), Some("1000"));
    }

    #[test]
    fn a_repeated_marker_ends_the_listing() {
        let (client, bodies) = client();
        let tags = run(client.list_user_tags("a")).unwrap();
        assert_eq!(tags.len(), 2, "one tag per page read");
        // First page, then the page for marker `same`, which repeats it: stop.
        assert_eq!(bodies.lock().unwrap().len(), 2);
    }

    #[test]
    fn documents_are_decoded_and_absent_things_are_none() {
        let (client, _) = client();
        assert_eq!(
            run(client.get_user_policy("a", "p")).unwrap().as_deref(),
            Some(r#"{"Version":"2012-10-17"}"#)
        );
        assert_eq!(run(client.get_user_policy("a", "missing")).unwrap(), None);
        assert_eq!(run(client.get_credential_report()).unwrap(), None);
        let e = run(client.list_accounts()).unwrap_err();
        assert_eq!(e.action, Action::Account(AccountAction::ListAccounts));
    }

    #[test]
    fn creates_are_sent_once_while_reads_are_retried() {
        let (client, bodies) = client_with(3);
        let e = run(client.create_group("g")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ServiceUnavailable);
        assert_eq!(bodies.lock().unwrap().len(), 1, "CreateGroup: one attempt");
        bodies.lock().unwrap().clear();
        assert!(run(client.create_policy_version("arn:aws:iam::1:policy/p", "{}")).is_err());
        assert_eq!(
            bodies.lock().unwrap().len(),
            1,
            "CreatePolicyVersion: one attempt"
        );
        bodies.lock().unwrap().clear();
        assert!(run(client.list_groups_for_user("a")).is_err());
        assert_eq!(
            bodies.lock().unwrap().len(),
            3,
            "a read: the standard retries"
        );
    }
}
