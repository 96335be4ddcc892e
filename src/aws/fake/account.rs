//! An in-memory account for unit tests of the audit and `policy --apply`: users with keys,
//! tags, groups and inline policies; managed policies with versions; the credential report;
//! an organization. Lists are served in pages of [`FakeAccount::page_size`] and each page
//! counts as one call, as IAM's markers would; faults are scripted per action.
//!
//! Must not: be used outside tests.

use crate::aws::account::{
    AccountAction, AccountIam, CredentialReport, IamUser, ManagedPolicy, OrgAccount, PolicyVersion,
    ReportState,
};
use crate::aws::{
    AccessKeyMeta, Action, AwsError, CallerIdentity, Credentials, ErrorKind, KeyStatus, LastUsed,
};
use crate::secret::Secret;
use jiff::Timestamp;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};

#[derive(Clone, Debug, Default)]
pub struct FakeUser {
    pub created: Option<Timestamp>,
    pub tags: Vec<(String, String)>,
    pub keys: Vec<(AccessKeyMeta, LastUsed)>,
    pub groups: Vec<String>,
    pub inline: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default)]
pub struct FakePolicy {
    pub name: String,
    /// (version id, document, is default)
    pub versions: Vec<(String, String, bool)>,
    pub next_version: u32,
}

#[derive(Debug, Default)]
pub struct State {
    pub account: String,
    pub users: BTreeMap<String, FakeUser>,
    pub groups: BTreeMap<String, Vec<String>>,
    pub policies: BTreeMap<String, FakePolicy>,
    /// GenerateCredentialReport calls answered IN_PROGRESS before COMPLETE.
    pub report_pending: u32,
    pub report_csv: Option<String>,
    pub report_generated: Option<Timestamp>,
    pub accounts: Vec<OrgAccount>,
    pub faults: HashMap<AccountAction, VecDeque<AwsError>>,
    pub calls: HashMap<AccountAction, usize>,
    /// ListAccessKeys and GetAccessKeyLastUsed calls (the `Iam` verbs).
    pub key_calls: usize,
    /// Users whose ListAccessKeys is refused with AccessDenied.
    pub deny_list_keys: Vec<String>,
    /// Writes whose answer is lost: the change is made, then the call fails (once each).
    pub lost_answers: Vec<AccountAction>,
    /// Write calls in order, for idempotence tests: `CreatePolicy iam-keys-self-service`.
    pub writes: Vec<String>,
}

pub struct FakeAccount {
    pub state: RefCell<State>,
    pub page_size: usize,
}

fn action(a: AccountAction) -> Action {
    Action::Account(a)
}

fn no_such(a: AccountAction, what: &str) -> AwsError {
    AwsError::new(action(a), ErrorKind::NoSuchEntity)
        .with_code("NoSuchEntity")
        .with_message(format!("{what} cannot be found."))
        .with_status(404)
}

impl FakeAccount {
    pub fn new(account: &str) -> FakeAccount {
        FakeAccount {
            state: RefCell::new(State {
                account: account.to_string(),
                ..State::default()
            }),
            page_size: 2,
        }
    }

    pub fn add_user(&self, name: &str, user: FakeUser) {
        self.state.borrow_mut().users.insert(name.to_string(), user);
    }

    /// The next call of `a` fails with `e` (queue several for several calls).
    pub fn fail(&self, a: AccountAction, kind: ErrorKind, code: &str) {
        let e = AwsError::new(action(a), kind)
            .with_code(code)
            .with_message(format!("scripted {code}"))
            .with_status(if kind == ErrorKind::AccessDenied {
                403
            } else {
                400
            });
        self.state
            .borrow_mut()
            .faults
            .entry(a)
            .or_default()
            .push_back(e);
    }

    pub fn calls(&self, a: AccountAction) -> usize {
        self.state.borrow().calls.get(&a).copied().unwrap_or(0)
    }

    pub fn writes(&self) -> Vec<String> {
        self.state.borrow().writes.clone()
    }

    /// One call (`pages` pages) of `a`: counts it and returns a scripted fault, if any.
    fn enter(&self, a: AccountAction, items: usize) -> Result<(), AwsError> {
        let mut s = self.state.borrow_mut();
        let pages = items.div_ceil(self.page_size.max(1)).max(1);
        *s.calls.entry(a).or_default() += pages;
        if let Some(e) = s.faults.get_mut(&a).and_then(VecDeque::pop_front) {
            return Err(e);
        }
        Ok(())
    }

    /// After a write was made: fail if its answer is to be lost.
    fn answer(&self, a: AccountAction) -> Result<(), AwsError> {
        let mut s = self.state.borrow_mut();
        if let Some(i) = s.lost_answers.iter().position(|x| *x == a) {
            s.lost_answers.remove(i);
            return Err(AwsError::new(action(a), ErrorKind::Network)
                .with_message("connection reset after the request was sent"));
        }
        Ok(())
    }

    fn policy_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:policy/{name}", self.state.borrow().account)
    }
}

impl AccountIam for FakeAccount {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let account = self.state.borrow().account.clone();
        Ok(CallerIdentity {
            arn: format!("arn:aws:iam::{account}:user/auditor"),
            account,
            user_id: "AIDAAUDITOR".into(),
        })
    }

    async fn list_users(&self) -> Result<Vec<IamUser>, AwsError> {
        let n = self.state.borrow().users.len();
        self.enter(AccountAction::ListUsers, n)?;
        let s = self.state.borrow();
        Ok(s.users
            .iter()
            .map(|(name, u)| IamUser {
                name: name.clone(),
                arn: format!("arn:aws:iam::{}:user/{name}", s.account),
                created: u.created,
            })
            .collect())
    }

    async fn list_user_tags(&self, user: &str) -> Result<Vec<(String, String)>, AwsError> {
        self.enter(AccountAction::ListUserTags, 1)?;
        let s = self.state.borrow();
        let u = s
            .users
            .get(user)
            .ok_or_else(|| no_such(AccountAction::ListUserTags, user))?;
        Ok(u.tags.clone())
    }

    async fn list_user_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        let mut s = self.state.borrow_mut();
        s.key_calls += 1;
        if s.deny_list_keys.iter().any(|u| u == user) {
            return Err(
                AwsError::new(Action::ListAccessKeys, ErrorKind::AccessDenied)
                    .with_code("AccessDenied")
                    .with_message(format!(
                        "not authorized to perform: iam:ListAccessKeys on {user}"
                    ))
                    .with_status(403),
            );
        }
        let u = s.users.get(user).cloned();
        drop(s);
        let e = AwsError::new(Action::ListAccessKeys, ErrorKind::NoSuchEntity);
        let u = u.ok_or(e)?;
        Ok(u.keys.into_iter().map(|(m, _)| m).collect())
    }

    async fn key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError> {
        self.state.borrow_mut().key_calls += 1;
        let s = self.state.borrow();
        s.users
            .values()
            .flat_map(|u| &u.keys)
            .find(|(m, _)| m.id == key_id)
            .map(|(_, used)| used.clone())
            .ok_or_else(|| AwsError::new(Action::GetAccessKeyLastUsed, ErrorKind::NoSuchEntity))
    }

    async fn list_groups_for_user(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let n = self
            .state
            .borrow()
            .users
            .get(user)
            .map_or(0, |u| u.groups.len());
        self.enter(AccountAction::ListGroupsForUser, n)?;
        let s = self.state.borrow();
        s.users
            .get(user)
            .map(|u| u.groups.clone())
            .ok_or_else(|| no_such(AccountAction::ListGroupsForUser, user))
    }

    async fn list_user_policies(&self, user: &str) -> Result<Vec<String>, AwsError> {
        self.enter(AccountAction::ListUserPolicies, 1)?;
        let s = self.state.borrow();
        s.users
            .get(user)
            .map(|u| u.inline.keys().cloned().collect())
            .ok_or_else(|| no_such(AccountAction::ListUserPolicies, user))
    }

    async fn get_user_policy(&self, user: &str, name: &str) -> Result<Option<String>, AwsError> {
        self.enter(AccountAction::GetUserPolicy, 1)?;
        let s = self.state.borrow();
        Ok(s.users.get(user).and_then(|u| u.inline.get(name).cloned()))
    }

    async fn put_user_policy(
        &self,
        user: &str,
        name: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        self.enter(AccountAction::PutUserPolicy, 1)?;
        let mut s = self.state.borrow_mut();
        s.writes.push(format!("PutUserPolicy {user} {name}"));
        let u = s
            .users
            .get_mut(user)
            .ok_or_else(|| no_such(AccountAction::PutUserPolicy, user))?;
        u.inline.insert(name.to_string(), document.to_string());
        Ok(())
    }

    async fn generate_credential_report(&self) -> Result<ReportState, AwsError> {
        self.enter(AccountAction::GenerateCredentialReport, 1)?;
        let mut s = self.state.borrow_mut();
        if s.report_pending > 0 {
            s.report_pending -= 1;
            return Ok(ReportState::InProgress);
        }
        Ok(ReportState::Complete)
    }

    async fn get_credential_report(&self) -> Result<Option<CredentialReport>, AwsError> {
        self.enter(AccountAction::GetCredentialReport, 1)?;
        let s = self.state.borrow();
        Ok(s.report_csv.as_ref().map(|csv| CredentialReport {
            csv: csv.clone(),
            generated: s.report_generated,
        }))
    }

    async fn get_policy(&self, arn: &str) -> Result<Option<ManagedPolicy>, AwsError> {
        self.enter(AccountAction::GetPolicy, 1)?;
        let s = self.state.borrow();
        Ok(s.policies.get(arn).map(|p| ManagedPolicy {
            arn: arn.to_string(),
            default_version: p.versions.iter().find(|v| v.2).map(|v| v.0.clone()),
        }))
    }

    async fn create_policy(
        &self,
        name: &str,
        document: &str,
        _description: &str,
    ) -> Result<ManagedPolicy, AwsError> {
        self.enter(AccountAction::CreatePolicy, 1)?;
        let arn = self.policy_arn(name);
        let mut s = self.state.borrow_mut();
        if s.policies.contains_key(&arn) {
            return Err(
                AwsError::new(action(AccountAction::CreatePolicy), ErrorKind::Other)
                    .with_code("EntityAlreadyExists")
                    .with_status(409),
            );
        }
        s.writes.push(format!("CreatePolicy {name}"));
        s.policies.insert(
            arn.clone(),
            FakePolicy {
                name: name.to_string(),
                versions: vec![("v1".into(), document.to_string(), true)],
                next_version: 2,
            },
        );
        drop(s);
        self.answer(AccountAction::CreatePolicy)?;
        Ok(ManagedPolicy {
            arn,
            default_version: Some("v1".into()),
        })
    }

    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, AwsError> {
        let n = self
            .state
            .borrow()
            .policies
            .get(arn)
            .map_or(0, |p| p.versions.len());
        self.enter(AccountAction::ListPolicyVersions, n)?;
        let s = self.state.borrow();
        let p = s
            .policies
            .get(arn)
            .ok_or_else(|| no_such(AccountAction::ListPolicyVersions, arn))?;
        Ok(p.versions
            .iter()
            .map(|(id, _, default)| PolicyVersion {
                id: id.clone(),
                is_default: *default,
                created: None,
            })
            .collect())
    }

    async fn get_policy_version(&self, arn: &str, version: &str) -> Result<String, AwsError> {
        self.enter(AccountAction::GetPolicyVersion, 1)?;
        let s = self.state.borrow();
        s.policies
            .get(arn)
            .and_then(|p| p.versions.iter().find(|v| v.0 == version))
            .map(|v| v.1.clone())
            .ok_or_else(|| no_such(AccountAction::GetPolicyVersion, version))
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String, AwsError> {
        self.enter(AccountAction::CreatePolicyVersion, 1)?;
        let mut s = self.state.borrow_mut();
        let p = s
            .policies
            .get_mut(arn)
            .ok_or_else(|| no_such(AccountAction::CreatePolicyVersion, arn))?;
        if p.versions.len() >= 5 {
            return Err(AwsError::new(
                action(AccountAction::CreatePolicyVersion),
                ErrorKind::LimitExceeded,
            )
            .with_code("LimitExceeded")
            .with_message("A managed policy can have up to 5 versions.")
            .with_status(409));
        }
        let id = format!("v{}", p.next_version);
        p.next_version += 1;
        for v in &mut p.versions {
            v.2 = false;
        }
        p.versions.push((id.clone(), document.to_string(), true));
        s.writes.push(format!("CreatePolicyVersion {id}"));
        drop(s);
        self.answer(AccountAction::CreatePolicyVersion)?;
        Ok(id)
    }

    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), AwsError> {
        self.enter(AccountAction::DeletePolicyVersion, 1)?;
        let mut s = self.state.borrow_mut();
        let p = s
            .policies
            .get_mut(arn)
            .ok_or_else(|| no_such(AccountAction::DeletePolicyVersion, arn))?;
        p.versions.retain(|v| v.0 != version || v.2);
        s.writes.push(format!("DeletePolicyVersion {version}"));
        Ok(())
    }

    async fn get_group(&self, name: &str) -> Result<Option<String>, AwsError> {
        self.enter(AccountAction::GetGroup, 1)?;
        let s = self.state.borrow();
        Ok(s.groups
            .contains_key(name)
            .then(|| format!("arn:aws:iam::{}:group/{name}", s.account)))
    }

    async fn create_group(&self, name: &str) -> Result<String, AwsError> {
        self.enter(AccountAction::CreateGroup, 1)?;
        let mut s = self.state.borrow_mut();
        s.writes.push(format!("CreateGroup {name}"));
        s.groups.insert(name.to_string(), Vec::new());
        let arn = format!("arn:aws:iam::{}:group/{name}", s.account);
        drop(s);
        self.answer(AccountAction::CreateGroup)?;
        Ok(arn)
    }

    async fn list_attached_group_policies(&self, group: &str) -> Result<Vec<String>, AwsError> {
        let n = self.state.borrow().groups.get(group).map_or(0, Vec::len);
        self.enter(AccountAction::ListAttachedGroupPolicies, n)?;
        let s = self.state.borrow();
        s.groups
            .get(group)
            .cloned()
            .ok_or_else(|| no_such(AccountAction::ListAttachedGroupPolicies, group))
    }

    async fn attach_group_policy(&self, group: &str, policy_arn: &str) -> Result<(), AwsError> {
        self.enter(AccountAction::AttachGroupPolicy, 1)?;
        let mut s = self.state.borrow_mut();
        s.writes.push(format!("AttachGroupPolicy {group}"));
        let g = s
            .groups
            .get_mut(group)
            .ok_or_else(|| no_such(AccountAction::AttachGroupPolicy, group))?;
        if !g.iter().any(|a| a == policy_arn) {
            g.push(policy_arn.to_string());
        }
        Ok(())
    }

    async fn add_user_to_group(&self, group: &str, user: &str) -> Result<(), AwsError> {
        self.enter(AccountAction::AddUserToGroup, 1)?;
        let mut s = self.state.borrow_mut();
        s.writes.push(format!("AddUserToGroup {group} {user}"));
        let u = s
            .users
            .get_mut(user)
            .ok_or_else(|| no_such(AccountAction::AddUserToGroup, user))?;
        if !u.groups.iter().any(|g| g == group) {
            u.groups.push(group.to_string());
        }
        Ok(())
    }

    async fn list_accounts(&self) -> Result<Vec<OrgAccount>, AwsError> {
        let n = self.state.borrow().accounts.len();
        self.enter(AccountAction::ListAccounts, n)?;
        Ok(self.state.borrow().accounts.clone())
    }

    async fn assume_role(
        &self,
        role_arn: &str,
        _session_name: &str,
    ) -> Result<Credentials, AwsError> {
        self.enter(AccountAction::AssumeRole, 1)?;
        let account = role_arn.split(':').nth(4).unwrap_or_default();
        Ok(Credentials {
            access_key_id: format!("ASIA{account}"),
            secret_access_key: Secret::new("fake-session-secret"),
            session_token: Some(Secret::new("fake-session-token")),
        })
    }
}

/// An Active or Inactive key for a [`FakeUser`].
pub fn fake_key(
    id: &str,
    status: KeyStatus,
    created: Timestamp,
    last_used: Option<Timestamp>,
) -> (AccessKeyMeta, LastUsed) {
    (
        AccessKeyMeta {
            id: id.to_string(),
            status,
            created: Some(created),
        },
        LastUsed {
            date: last_used,
            service: last_used.map(|_| "s3".to_string()),
            region: last_used.map(|_| "us-east-1".to_string()),
        },
    )
}
