//! Whose credentials signed a call: a fact every failure carries, so the advice can say
//! whether the old key, the new key or an MFA session was refused.
//!
//! Must not: format words for users (that is `cli::advice`).

/// Whose credentials signed the call that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    OldKey,
    NewKey,
    MfaSession,
}

impl Signer {
    /// `MfaSession` when the call went out under an MFA session, else `key` (the key whose own
    /// credentials signed it). The one place this choice is made.
    pub fn of(signed_by_session: bool, key: Signer) -> Signer {
        if signed_by_session {
            Signer::MfaSession
        } else {
            key
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Signer;

    #[test]
    fn a_session_signs_instead_of_the_key() {
        assert_eq!(Signer::of(true, Signer::OldKey), Signer::MfaSession);
        assert_eq!(Signer::of(true, Signer::NewKey), Signer::MfaSession);
        assert_eq!(Signer::of(false, Signer::OldKey), Signer::OldKey);
        assert_eq!(Signer::of(false, Signer::NewKey), Signer::NewKey);
    }
}
