// Over 500 lines: 21 operations, each its own SDK request builder; what they share is in `client`.
//! [`AccountIam`] on the official SDK: IAM, STS and Organizations clients bound to one set of
//! credentials, built by [`SdkConnector::connect_account`] exactly as
//! [`Connector::connect`] builds the key clients (explicit
//! credentials, the same HTTP client, retries and timeouts).
//!
//! Every list follows its marker (`NextToken` for Organizations) to the last page, up to
//! [`MAX_ACCOUNT_PAGES`]. Every call goes through the key client's one timed wrapper
//! (`SdkClient::timed`), so it logs the same `debug!` line as the key calls.
//!
//! Must not: retry beyond the SDK's standard retries (in particular never re-send a create:
//! see [`AccountIam`]), print, or log a secret.

use super::client::{Call, all_pages, malformed, one_attempt, session_credentials, timestamp};
use super::{SdkClient, SdkConnector};
use crate::aws::account::{
    AccountAction, AccountIam, CredentialReport, IamUser, ManagedPolicy, OrgAccount, PolicyVersion,
    ReportState, decode_policy_document,
};
use crate::aws::error::from_sdk;
use crate::aws::{
    AccessKeyMeta, Action, Answer, AwsError, CallerIdentity, Connector, Credentials, ErrorKind,
    Iam, LastUsed, Target,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::fmt;

/// More pages than any account has (ListUsers pages hold up to 1,000 users): a guard against
/// a server that keeps answering with a new marker.
pub const MAX_ACCOUNT_PAGES: usize = 10_000;

impl Answer for ReportState {}
impl Answer for ManagedPolicy {}

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

    /// The SDK's errors of `a` as [`AwsError`]s naming the endpoint (Organizations' for
    /// ListAccounts, else the key client's).
    fn err<E>(&self, a: AccountAction) -> impl Fn(SdkError<E, HttpResponse>) -> AwsError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let keys = self.keys.fail(act(a));
        move |e| match a {
            AccountAction::ListAccounts => from_sdk(act(a), e, &self.orgs_endpoint),
            _ => keys(e),
        }
    }
}

impl AccountIam for SdkAccountClient {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        self.keys.caller_identity().await
    }

    async fn list_users(&self) -> Result<Vec<IamUser>, AwsError> {
        let a = AccountAction::ListUsers;
        let pages = all_pages(act(a), MAX_ACCOUNT_PAGES, |marker| async move {
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
        });
        self.keys.timed(Call::new(act(a)), pages).await
    }

    async fn list_user_tags(&self, user: &str) -> Result<Vec<(String, String)>, AwsError> {
        let a = AccountAction::ListUserTags;
        let pages = all_pages(act(a), MAX_ACCOUNT_PAGES, |marker| async move {
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
        });
        self.keys.timed(Call::new(act(a)).user(user), pages).await
    }

    async fn list_user_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        self.keys.list_access_keys(user).await
    }

    async fn key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError> {
        self.keys.access_key_last_used(key_id).await
    }

    async fn list_groups_for_user(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let a = AccountAction::ListGroupsForUser;
        let pages = all_pages(act(a), MAX_ACCOUNT_PAGES, |marker| async move {
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
        });
        self.keys.timed(Call::new(act(a)).user(user), pages).await
    }

    async fn list_user_policies(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let a = AccountAction::ListUserPolicies;
        let pages = all_pages(act(a), MAX_ACCOUNT_PAGES, |marker| async move {
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
        });
        self.keys.timed(Call::new(act(a)).user(user), pages).await
    }

    async fn get_user_policy(&self, user: &str, name: &str) -> Result<Option<String>, AwsError> {
        let a = AccountAction::GetUserPolicy;
        let call = Call::new(act(a)).user(user).resource(name);
        self.keys
            .timed(call, async {
                none_if_missing(
                    self.iam()
                        .get_user_policy()
                        .user_name(user)
                        .policy_name(name)
                        .send()
                        .await
                        .map(|out| decode_policy_document(out.policy_document()))
                        .map_err(self.err(a)),
                )
            })
            .await
    }

    async fn put_user_policy(
        &self,
        user: &str,
        name: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        let a = AccountAction::PutUserPolicy;
        let call = Call::new(act(a)).user(user).resource(name);
        self.keys
            .timed(call, async {
                self.iam()
                    .put_user_policy()
                    .user_name(user)
                    .policy_name(name)
                    .policy_document(document)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(self.err(a))
            })
            .await
    }

    async fn generate_credential_report(&self) -> Result<ReportState, AwsError> {
        use aws_sdk_iam::types::ReportStateType;
        let a = AccountAction::GenerateCredentialReport;
        self.keys
            .timed(Call::new(act(a)), async {
                let out = self
                    .iam()
                    .generate_credential_report()
                    .send()
                    .await
                    .map_err(self.err(a))?;
                Ok(match out.state() {
                    Some(ReportStateType::Complete) => ReportState::Complete,
                    Some(ReportStateType::Started) => ReportState::Started,
                    _ => ReportState::InProgress,
                })
            })
            .await
    }

    async fn get_credential_report(&self) -> Result<Option<CredentialReport>, AwsError> {
        let a = AccountAction::GetCredentialReport;
        self.keys
            .timed(Call::new(act(a)), async {
                match self.iam().get_credential_report().send().await {
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
                            Some("ReportNotPresent" | "ReportInProgress" | "ReportExpired") => {
                                Ok(None)
                            }
                            _ => Err(e),
                        }
                    }
                }
            })
            .await
    }

    async fn get_policy(&self, arn: &str) -> Result<Option<ManagedPolicy>, AwsError> {
        let a = AccountAction::GetPolicy;
        self.keys
            .timed(Call::new(act(a)).resource(arn), async {
                none_if_missing(
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
                )
            })
            .await
    }

    async fn create_policy(
        &self,
        name: &str,
        document: &str,
        description: &str,
    ) -> Result<ManagedPolicy, AwsError> {
        let a = AccountAction::CreatePolicy;
        self.keys
            .timed(Call::new(act(a)).resource(name), async {
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
            })
            .await
    }

    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, AwsError> {
        let a = AccountAction::ListPolicyVersions;
        let pages = all_pages(act(a), MAX_ACCOUNT_PAGES, |marker| async move {
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
        });
        self.keys
            .timed(Call::new(act(a)).resource(arn), pages)
            .await
    }

    async fn get_policy_version(&self, arn: &str, version: &str) -> Result<String, AwsError> {
        let a = AccountAction::GetPolicyVersion;
        self.keys
            .timed(Call::new(act(a)).resource(arn), async {
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
            })
            .await
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String, AwsError> {
        let a = AccountAction::CreatePolicyVersion;
        self.keys
            .timed(Call::new(act(a)).resource(arn), async {
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
            })
            .await
    }

    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), AwsError> {
        let a = AccountAction::DeletePolicyVersion;
        self.keys
            .timed(Call::new(act(a)).resource(arn), async {
                self.iam()
                    .delete_policy_version()
                    .policy_arn(arn)
                    .version_id(version)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(self.err(a))
            })
            .await
    }

    async fn get_group(&self, name: &str) -> Result<Option<String>, AwsError> {
        let a = AccountAction::GetGroup;
        self.keys
            .timed(Call::new(act(a)).resource(name), async {
                none_if_missing(
                    self.iam()
                        .get_group()
                        .group_name(name)
                        .max_items(1)
                        .send()
                        .await
                        .map_err(self.err(a))
                        .map(|out| out.group().map(|g| g.arn().to_string()).unwrap_or_default()),
                )
            })
            .await
    }

    async fn create_group(&self, name: &str) -> Result<String, AwsError> {
        let a = AccountAction::CreateGroup;
        self.keys
            .timed(Call::new(act(a)).resource(name), async {
                self.iam()
                    .create_group()
                    .group_name(name)
                    .customize()
                    .config_override(one_attempt())
                    .send()
                    .await
                    .map_err(self.err(a))
                    .map(|out| out.group().map(|g| g.arn().to_string()).unwrap_or_default())
            })
            .await
    }

    async fn list_attached_group_policies(&self, group: &str) -> Result<Vec<String>, AwsError> {
        let a = AccountAction::ListAttachedGroupPolicies;
        let pages = all_pages(act(a), MAX_ACCOUNT_PAGES, |marker| async move {
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
        });
        self.keys
            .timed(Call::new(act(a)).resource(group), pages)
            .await
    }

    async fn attach_group_policy(&self, group: &str, policy_arn: &str) -> Result<(), AwsError> {
        let a = AccountAction::AttachGroupPolicy;
        self.keys
            .timed(Call::new(act(a)).resource(group), async {
                self.iam()
                    .attach_group_policy()
                    .group_name(group)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(self.err(a))
            })
            .await
    }

    async fn add_user_to_group(&self, group: &str, user: &str) -> Result<(), AwsError> {
        let a = AccountAction::AddUserToGroup;
        let call = Call::new(act(a)).user(user).resource(group);
        self.keys
            .timed(call, async {
                self.iam()
                    .add_user_to_group()
                    .group_name(group)
                    .user_name(user)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(self.err(a))
            })
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<OrgAccount>, AwsError> {
        let a = AccountAction::ListAccounts;
        // Organizations pages with `NextToken`, which is there exactly when more follow.
        let pages = all_pages(act(a), MAX_ACCOUNT_PAGES, |token| async move {
            let out = self
                .orgs
                .list_accounts()
                .set_next_token(token)
                .send()
                .await
                .map_err(self.err(a))?;
            let accounts = out
                .accounts()
                .iter()
                .filter_map(|acc| {
                    #[allow(deprecated)]
                    let status = acc.status().map(|s| s.as_str().to_string());
                    Some(OrgAccount {
                        id: acc.id()?.to_string(),
                        name: acc.name().unwrap_or_default().to_string(),
                        status: status.unwrap_or_default(),
                    })
                })
                .collect();
            Ok((accounts, true, out.next_token().map(str::to_string)))
        });
        self.keys.timed(Call::new(act(a)), pages).await
    }

    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
    ) -> Result<Credentials, AwsError> {
        let a = AccountAction::AssumeRole;
        self.keys
            .timed(Call::new(act(a)).resource(role_arn), async {
                let out = self
                    .keys
                    .sts
                    .assume_role()
                    .role_arn(role_arn)
                    .role_session_name(session_name)
                    .send()
                    .await
                    .map_err(self.err(a))?;
                session_credentials(act(a), out.credentials())
            })
            .await
    }
}
