//! The simulated primary phone of an account: scans QR codes, enters pairing codes,
//! unlinks companion devices and administers groups, doing the phone's side of the
//! cryptography (shared/protocol/03 §4.10, §5.8) with wa-engine's `pair` functions.
//! The [`Router`] methods that hand out phones and act as one live here too.

use rand::{Rng as _, RngExt as _};
use serde::Serialize;
use wa_engine::Jid;
use wa_engine::binary::Node;
use wa_engine::pair::code::PairingCode;
use wa_engine::pair::{AdvSecret, DeviceIdentityParams, QrCode};

use crate::accounts::{DeviceInfo, PairPlan};
use crate::connections::{ConnId, Push};
use crate::error::PhoneError;
use crate::primary::{AppStateAction, AppStateView, HistoryReceipt, SyncSwitches};
use crate::state::{Router, State};

/// A companion the phone accepted: pair-success is on its way to the registration
/// connection. The device shows up in [`Phone::devices`] once the companion's
/// `pair-device-sign` reply verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingLink {
    /// The device id allocated to the companion.
    pub device: u16,
    /// The companion's PN AD JID.
    pub jid: String,
    /// The companion's LID AD JID.
    pub lid: String,
}

impl PendingLink {
    fn of(plan: &PairPlan) -> Self {
        Self {
            device: plan.device,
            jid: format!("{}:{}@s.whatsapp.net", plan.phone, plan.device),
            lid: format!("{}:{}@lid", plan.lid_user, plan.device),
        }
    }
}

/// Handle on one account's simulated primary phone. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Phone {
    router: Router,
    number: String,
}

impl Phone {
    pub(crate) fn new(router: Router, number: String) -> Self {
        Self { router, number }
    }

    /// The account's phone number (digits).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The linked companion devices.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.router
            .account(&self.number)
            .map(|a| a.devices)
            .unwrap_or_default()
    }

    /// Scans a QR string shown by a companion (shared/protocol/03 §4.3, 4 or 5 fields, with
    /// or without the `https://wa.me/settings/linked_devices#` prefix).
    ///
    /// Finds the registration connection that offered the ref, checks the QR's noise and
    /// identity keys are the ones that connection registered, allocates a device id and key
    /// index, builds the `<device-identity>` as the phone does (03 §4.10: account signature
    /// with the phone's identity key, HMAC with the QR's adv secret) and has the connection
    /// send pair-success. The device is recorded once the companion's reply verifies.
    ///
    /// # Errors
    /// [`PhoneError::MalformedQr`], [`PhoneError::UnknownRef`], [`PhoneError::RefExpired`],
    /// [`PhoneError::QrKeyMismatch`], [`PhoneError::NoSuchAccount`],
    /// [`PhoneError::DevicesExhausted`].
    pub fn scan(&self, qr: &str) -> Result<PendingLink, PhoneError> {
        let qr = QrCode::parse(qr.trim()).map_err(PhoneError::MalformedQr)?;
        let conn = self.router.conn_of_ref(&qr.pairing_ref)?;
        let registration = self
            .router
            .registration_of(conn)
            .ok_or(PhoneError::UnknownRef)?;
        if registration.noise_pub != qr.noise_pub || registration.identity_pub != qr.identity_pub {
            return Err(PhoneError::QrKeyMismatch);
        }
        let plan = {
            let mut st = self.router.lock();
            build_plan(&mut st, &self.number, qr.identity_pub, &qr.adv_secret)?
        };
        let link = PendingLink::of(&plan);
        tracing::debug!(phone = %self.number, device = plan.device, "phone scanned a QR");
        self.router.deliver_pair_plan(conn, plan);
        Ok(link)
    }

    /// Types the 8-character pairing code a companion displays (shared/protocol/03 §5.8) into
    /// this phone, for the latest companion that asked for a code for this number.
    ///
    /// Unwraps the companion's ephemeral key with the code, makes a primary ephemeral key,
    /// wraps it with the code and has the companion's connection send the primary_hello
    /// notification. A wrong code is not detected here (the phone cannot tell): the
    /// companion's key bundle will not decrypt at companion_finish.
    ///
    /// # Errors
    /// [`PhoneError::MalformedCode`], [`PhoneError::NoPendingCode`],
    /// [`PhoneError::Pairing`] (the companion's wrapped key has the wrong length).
    pub fn enter_code(&self, code: &str) -> Result<(), PhoneError> {
        let code = PairingCode::parse(code.trim()).map_err(PhoneError::MalformedCode)?;
        let mut st = self.router.lock();
        let (pairing_ref, wrapped) = st
            .pairing
            .code_pairings
            .iter()
            .filter(|(_, p)| p.phone == self.number)
            .max_by_key(|(_, p)| p.seq)
            .map(|(r, p)| (r.clone(), p.wrapped_companion_ephemeral.clone()))
            .ok_or(PhoneError::NoPendingCode)?;
        let hello = wa_engine::pair::code::primary_hello(&mut st.rng, &code, &wrapped)
            .map_err(PhoneError::Pairing)?;
        let primary_identity = st
            .directory
            .get(&self.number)
            .map(|a| a.identity_pub)
            .ok_or_else(|| PhoneError::NoSuchAccount(self.number.clone()))?;
        let pending = st
            .pairing
            .code_pairings
            .get_mut(&pairing_ref)
            .ok_or(PhoneError::NoPendingCode)?;
        pending.primary_ephemeral = Some(hello.ephemeral);
        pending.companion_ephemeral = Some(hello.companion_ephemeral_pub);
        let conn = pending.conn;
        drop(st);
        self.router.push(
            conn,
            Push::PrimaryHello {
                wrapped_primary_ephemeral: hello.wrapped_primary_ephemeral_pub.to_vec(),
                primary_identity,
                pairing_ref,
            },
        );
        Ok(())
    }

    /// Unlinks a companion device: live connections get
    /// `<stream:error code="401"><conflict type="device_removed"/></stream:error>` and later
    /// logins `<failure reason="401"/>`.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::NoSuchDevice`].
    pub fn remove_device(&self, device: u16) -> Result<(), PhoneError> {
        self.router.remove_device(&self.number, device)
    }

    /// The stanzas the sandbox routed to this primary phone (device 0), oldest first (at
    /// most the newest 1000), so clients that encrypt for their own or their peer's primary
    /// (as Baileys does) can be checked. The phone answers none of them, except that it
    /// decrypts its own companions' peer messages and answers an
    /// `APP_STATE_SYNC_KEY_REQUEST` with a key share ([`Self::key_requests`]).
    pub fn received(&self) -> Vec<wa_engine::binary::Node> {
        self.router.phone_inbox(&self.number)
    }

    /// The phone's Signal identity public key (32 bytes): the account's identity key,
    /// the one its device-0 prekey bundle carries.
    pub fn identity_pub(&self) -> Option<[u8; 32]> {
        self.router
            .lock()
            .directory
            .get(&self.number)
            .map(|a| a.identity_pub)
    }

    /// Sets the phone's sync switches (withhold the key share or the NCT salt, break the
    /// next patch MAC, turn onboarding on or off for this account: [`SyncSwitches`]).
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::PhoneSync`].
    pub fn set_sync_switches(&self, switches: SyncSwitches) -> Result<(), PhoneError> {
        let mut st = self.router.lock();
        if !st.directory.contains(&self.number) {
            return Err(PhoneError::NoSuchAccount(self.number.clone()));
        }
        Ok(st.phone_ctx().set_switches(&self.number, switches)?)
    }

    /// The account's NCT salt (32 bytes; `None` for an account without one), the value the
    /// phone provisions through app state and history sync (shared/protocol/07 §5.3).
    pub fn nct_salt(&self) -> Option<[u8; 32]> {
        self.router
            .lock()
            .directory
            .get(&self.number)
            .and_then(|a| a.nct_salt)
    }

    /// Onboards companion `device` now, as the phone does after pairing when phone sync is on
    /// (key share unless withheld, the account's initial patches once, history sync): for
    /// tests that turn the sync on after the companion paired. Once per companion; the
    /// companion must have uploaded prekeys (the phone needs its bundle).
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::NoSuchDevice`], [`PhoneError::PhoneSync`].
    pub fn onboard_companion(&self, device: u16) -> Result<(), PhoneError> {
        let mut st = self.router.lock();
        if st
            .directory
            .companion(&(self.number.clone(), device))
            .is_none()
        {
            return Err(if st.directory.contains(&self.number) {
                PhoneError::NoSuchDevice {
                    phone: self.number.clone(),
                    device,
                }
            } else {
                PhoneError::NoSuchAccount(self.number.clone())
            });
        }
        let mut ctx = st.phone_ctx();
        let switches = ctx.switches(&self.number);
        ctx.set_switches(
            &self.number,
            SyncSwitches {
                enabled: Some(true),
                ..switches
            },
        )?;
        let result = ctx.onboard(&(self.number.clone(), device));
        ctx.set_switches(&self.number, switches)?;
        Ok(result?)
    }

    /// The phone's sync switches.
    pub fn sync_switches(&self) -> SyncSwitches {
        self.router.lock().primaries.switches(&self.number)
    }

    /// Adds `contact` (a phone number, with or without an account) with `full_name` to the
    /// phone's address book: one `["contact", pn]` record in `critical_unblock_low` and a
    /// conversation in the history sync of the next companion (shared/protocol/08 §7, §11).
    /// Once the account's initial patches are out, the record is uploaded at once.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::InvalidPhoneNumber`] (for `contact`),
    /// [`PhoneError::AppStateConflict`], [`PhoneError::PhoneSync`].
    pub fn add_contact(&self, contact: &str, full_name: &str) -> Result<(), PhoneError> {
        crate::accounts::validate_phone(contact)?;
        let mut st = self.router.lock();
        if !st.directory.contains(&self.number) {
            return Err(PhoneError::NoSuchAccount(self.number.clone()));
        }
        st.phone_ctx()
            .add_contact(&self.number, contact, full_name)?;
        Ok(())
    }

    /// The phone changes the account's app state (mute, archive, pin, mark read, contact,
    /// push name): one patch from device 0, and `server_sync` to every companion. Returns the
    /// collection's new version. A push name also becomes the account's `notify` name.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`], [`PhoneError::BadJid`],
    /// [`PhoneError::AppStateConflict`], [`PhoneError::PhoneSync`].
    pub fn app_state_mutation(&self, action: &AppStateAction) -> Result<u64, PhoneError> {
        let mut st = self.router.lock();
        if !st.directory.contains(&self.number) {
            return Err(PhoneError::NoSuchAccount(self.number.clone()));
        }
        let version = st.phone_ctx().mutate(&self.number, action)?;
        if let AppStateAction::PushName { name } = action {
            st.set_push_name(&self.number, name);
        }
        Ok(version)
    }

    /// The account's app state as the phone decodes it with its sync keys: every stored
    /// patch (the phone's and its companions') replayed and verified (shared/protocol/08 §6),
    /// failures listed in [`AppStateView::errors`].
    pub fn app_state(&self) -> AppStateView {
        let st = self.router.lock();
        crate::primary::decode_view(st.primaries.get(&self.number), &st.appsync, &self.number)
    }

    /// The `<receipt type="hist_sync">`s companions sent for the phone's history-sync
    /// notifications, in arrival order.
    pub fn history_receipts(&self) -> Vec<HistoryReceipt> {
        self.router
            .lock()
            .primaries
            .get(&self.number)
            .map(|p| p.hist_receipts.clone())
            .unwrap_or_default()
    }

    /// The `APP_STATE_SYNC_KEY_REQUEST`s the phone decrypted: (companion device, requested
    /// key ids), in arrival order.
    pub fn key_requests(&self) -> Vec<(u16, Vec<Vec<u8>>)> {
        self.router
            .lock()
            .primaries
            .get(&self.number)
            .map(|p| p.key_requests.clone())
            .unwrap_or_default()
    }

    /// Sets the account's push name (sent as `notify` on its messages), as a
    /// `<presence name>` from one of its devices would (shared/protocol/06 §3.3).
    pub fn set_push_name(&self, name: &str) {
        self.router.lock().set_push_name(&self.number, name);
    }

    /// Makes the account hosted (business-hosted, `ADVEncryptionType::HOSTED`) or ordinary
    /// for the companions it pairs from now on: a hosted phone signs the account signature
    /// and the HMAC with `06 05` and accepts a `06 06` (or `06 01`) device signature; an
    /// ordinary one only `06 01` (wa_engine::pair::success module docs).
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn set_hosted(&self, hosted: bool) -> Result<(), PhoneError> {
        let mut st = self.router.lock();
        let account = st
            .directory
            .get_mut(&self.number)
            .ok_or_else(|| PhoneError::NoSuchAccount(self.number.clone()))?;
        account.hosted = hosted;
        Ok(())
    }
}

impl Router {
    /// Creates an account with a simulated primary phone.
    ///
    /// `phone` must be digits only, longer than 6 digits, not starting with `0`. The LID
    /// user and the phone's identity key are drawn from the router's RNG.
    ///
    /// # Errors
    /// [`PhoneError::InvalidPhoneNumber`], [`PhoneError::AccountExists`].
    pub fn create_account(&self, phone: &str) -> Result<crate::Phone, PhoneError> {
        self.new_account(phone)?;
        Ok(Phone::new(self.clone(), phone.to_owned()))
    }

    /// The phone of an existing account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`].
    pub fn phone(&self, phone: &str) -> Result<crate::Phone, PhoneError> {
        if self.has_account(phone) {
            Ok(Phone::new(self.clone(), phone.to_owned()))
        } else {
            Err(PhoneError::NoSuchAccount(phone.to_owned()))
        }
    }

    /// Creates a group as the `creator` account's primary phone would (shared/protocol/06
    /// §1.3, §1.7): `creator` is super admin, `members` (phone numbers with accounts) are
    /// members, and every member device gets the `w:gp2` `<create>` notification. Returns
    /// the group JID `120363…@g.us`.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchAccount`](PhoneError::NoSuchAccount) for the creator or a
    /// member without an account; [`PhoneError::BadSubject`](PhoneError::BadSubject).
    pub fn create_group(
        &self,
        creator: &str,
        subject: &str,
        members: &[&str],
    ) -> Result<Jid, PhoneError> {
        let mut st = self.lock();
        for phone in std::iter::once(&creator).chain(members) {
            if !st.directory.contains(phone) {
                return Err(PhoneError::NoSuchAccount((*phone).to_owned()));
            }
        }
        let listed: Vec<Jid> = members.iter().map(|p| Jid::pn((*p).to_owned())).collect();
        let (gid, _) = st
            .with_groups(|ops| {
                ops.new_group(
                    &(creator.to_owned(), 0),
                    subject.to_owned(),
                    &listed,
                    None,
                    (false, false),
                )
            })
            .map_err(|()| PhoneError::BadSubject)?;
        Ok(Jid::group(gid))
    }

    /// Removes an account from a group as its super admin's primary phone would; every
    /// member device and the removed account's devices get the `w:gp2` `<remove>`
    /// notification, and group messages stop reaching the removed account.
    ///
    /// # Errors
    /// [`PhoneError::NoSuchGroup`](PhoneError::NoSuchGroup),
    /// [`PhoneError::NoSuchAccount`](PhoneError::NoSuchAccount) when the account is
    /// not a participant.
    pub fn remove_group_participant(&self, group: &Jid, phone: &str) -> Result<(), PhoneError> {
        let mut st = self.lock();
        let g = st
            .groups
            .get(group.user())
            .ok_or_else(|| PhoneError::NoSuchGroup(group.to_string()))?;
        if !g.is_member(phone) {
            return Err(PhoneError::NoSuchAccount(phone.to_owned()));
        }
        let admin = g.acting_admin().unwrap_or(phone).to_owned();
        let change = Node::new("remove")
            .with_children([Node::new("participant").attr("jid", Jid::pn(phone.to_owned()))]);
        let id = st.fresh_id();
        let gid = group.user().to_owned();
        st.with_groups(|ops| ops.change_group(&(admin, 0), &id, None, &gid, &change));
        Ok(())
    }

    /// The participants (phone numbers) of a group, in join order; empty if it does not exist.
    pub fn group_participants(&self, group: &Jid) -> Vec<String> {
        self.lock()
            .groups
            .get(group.user())
            .map(crate::groups::Group::member_phones)
            .unwrap_or_default()
    }
}

/// The phone accepts a companion: allocates a device id and key index and builds the
/// `<device-identity>` (shared/protocol/03 §4.10 steps 1-4).
pub(crate) fn build_plan(
    st: &mut State,
    phone: &str,
    companion_identity: [u8; 32],
    adv_secret: &AdvSecret,
) -> Result<PairPlan, PhoneError> {
    let (device, key_index) = st.directory.allocate_device(phone)?;
    let timestamp = st.config.clock.unix_now();
    let raw_id: u32 = st.rng.random();
    let mut signature_random = zeroize::Zeroizing::new([0u8; 64]);
    st.rng.fill_bytes(signature_random.as_mut());
    let account = st
        .directory
        .get(phone)
        .ok_or_else(|| PhoneError::NoSuchAccount(phone.to_owned()))?;
    let built = wa_engine::pair::build_device_identity_with(
        &account.identity_secret,
        &companion_identity,
        adv_secret,
        &DeviceIdentityParams {
            raw_id,
            timestamp,
            key_index,
            hosted: account.hosted,
        },
        &signature_random,
    );
    Ok(PairPlan {
        phone: phone.to_owned(),
        lid_user: account.lid_user.clone(),
        device,
        key_index,
        details: built.details,
        device_identity_hmac: built.device_identity_hmac,
        account_pub: account.identity_pub,
        companion_identity,
        platform: account.platform.clone(),
        business_name: account.business_name.clone(),
    })
}

/// The phone's side of companion_finish (shared/protocol/03 §5.8): decrypts the companion's
/// key bundle with the primary ephemeral of this pairing ref, derives the adv secret, and
/// builds the pair plan.
///
/// # Errors
/// [`PhoneError::NoPendingCode`] (unknown ref, another connection's ref, or the code was not
/// entered yet), [`PhoneError::Pairing`] (bundle does not decrypt: wrong code),
/// [`PhoneError::IdentityMismatch`].
pub(crate) fn finish_code_pairing(
    router: &Router,
    conn: ConnId,
    pairing_ref: &[u8],
    wrapped_bundle: &[u8],
    companion_identity: &[u8; 32],
) -> Result<PairPlan, PhoneError> {
    let mut st = router.lock();
    let pending = st
        .pairing
        .code_pairings
        .get(pairing_ref)
        .filter(|p| p.conn == conn)
        .ok_or(PhoneError::NoPendingCode)?;
    let (Some(primary_ephemeral), Some(companion_ephemeral)) =
        (&pending.primary_ephemeral, &pending.companion_ephemeral)
    else {
        return Err(PhoneError::NoPendingCode);
    };
    let phone = pending.phone.clone();
    let account = st
        .directory
        .get(&phone)
        .ok_or_else(|| PhoneError::NoSuchAccount(phone.clone()))?;
    let identity = x25519_dalek::StaticSecret::from(*account.identity_secret);
    let finished = wa_engine::pair::code::primary_finish(
        primary_ephemeral,
        companion_ephemeral,
        &identity,
        wrapped_bundle,
    )
    .map_err(PhoneError::Pairing)?;
    if finished.companion_identity_pub != *companion_identity {
        return Err(PhoneError::IdentityMismatch);
    }
    st.pairing.code_pairings.remove(pairing_ref);
    build_plan(
        &mut st,
        &phone,
        finished.companion_identity_pub,
        &finished.adv_secret,
    )
}

/// Notifications (issue 13; `notify`).
impl Phone {
    /// Pushes `notice` to this account's devices: [`Router::push_notification`].
    ///
    /// # Errors
    /// As [`Router::push_notification`].
    pub fn push_notification(&self, notice: &crate::Notice) -> Result<usize, PhoneError> {
        self.router.push_notification(&self.number, notice)
    }
}
