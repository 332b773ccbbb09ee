//! End to end through wa-sandbox: group management (participating list, promote / demote,
//! subject, description, settings, disappearing timer, invite links, join by code, leave)
//! and the profile (status text, pictures, push name), each checked from the other
//! members' side too: their metadata and the `w:gp2` / `picture` / `status` notifications
//! they receive.

mod msg_support;

use msg_support::{Peer, pair, sandbox};
use wa_engine::notification::NotificationKind;
use wa_engine::{Event, GroupChange, GroupSetting, IqError, Jid, ParticipantRole};

/// The next notification of `peer` that `pred` picks.
async fn notification<T>(
    peer: &mut Peer,
    mut pred: impl FnMut(&NotificationKind) -> Option<T>,
) -> anyhow::Result<T> {
    peer.wait(|e| match e {
        Event::Notification(n) => pred(&n.kind),
        _ => None,
    })
    .await
}

fn role_of(info: &wa_engine::GroupInfo, user: &Jid) -> Option<ParticipantRole> {
    info.participants
        .iter()
        .find(|p| p.jid.user() == user.user())
        .map(|p| p.role)
}

#[tokio::test]
async fn group_lifecycle_seen_by_every_member() -> anyhow::Result<()> {
    let sb = sandbox(41).await?;
    let mut alice = pair(&sb, "15550000041").await?;
    let mut bob = pair(&sb, "15550000042").await?;
    let carol = pair(&sb, "15550000043").await?;

    let group = alice.client.create_group("Plans", &[bob.user()]).await?;

    // Listed by both members, not by Carol.
    let listed = bob.client.joined_groups().await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].jid, group.jid);
    assert!(carol.client.joined_groups().await?.is_empty());
    // Typed errors: Carol is not a member, and a made-up group does not exist.
    assert_eq!(
        carol.client.group_info(&group.jid).await.unwrap_err(),
        IqError::Forbidden
    );
    let nowhere: Jid = "120363999999999999@g.us".parse()?;
    assert_eq!(
        alice.client.group_info(&nowhere).await.unwrap_err(),
        IqError::NotFound
    );

    // Promote Bob; Bob sees it in the metadata and as a notification.
    let out = alice
        .client
        .promote_participants(&group.jid, &[bob.user()])
        .await?;
    assert!(out.iter().all(|p| p.error.is_none()), "{out:?}");
    notification(&mut bob, |k| match k {
        NotificationKind::Group(g, _) => g
            .changes
            .iter()
            .any(|c| matches!(c, GroupChange::Promoted(j) if !j.is_empty()))
            .then_some(()),
        _ => None,
    })
    .await?;
    let info = bob.client.group_info(&group.jid).await?;
    assert_eq!(role_of(&info, &bob.user()), Some(ParticipantRole::Admin));

    // Bob (now admin) renames; Alice is told.
    bob.client
        .set_group_subject(&group.jid, "Plans 2027")
        .await?;
    let subject = notification(&mut alice, |k| match k {
        NotificationKind::Group(g, _) => g.changes.iter().find_map(|c| match c {
            GroupChange::Subject(s) => Some(s.clone()),
            _ => None,
        }),
        _ => None,
    })
    .await?;
    assert_eq!(subject, "Plans 2027");
    let info = alice.client.group_info(&group.jid).await?;
    assert_eq!(info.subject, "Plans 2027");
    assert_eq!(
        info.subject_owner.as_ref().map(Jid::user),
        Some(bob.user().user())
    );

    // Description: set, then changed (prev = the current id), then removed.
    let first = alice
        .client
        .set_group_description(&group.jid, "Where we meet")
        .await?;
    let desc = notification(&mut bob, |k| match k {
        NotificationKind::Group(_, x) => x.description.clone(),
        _ => None,
    })
    .await?;
    assert_eq!(desc.as_deref(), Some("Where we meet"));
    let second = alice
        .client
        .set_group_description(&group.jid, "Where and when")
        .await?;
    assert_ne!(first, second);
    let info = bob.client.group_info(&group.jid).await?;
    let d = info.description.expect("description");
    assert_eq!(
        (d.id.as_str(), d.body.as_str()),
        (second.as_str(), "Where and when")
    );
    // A stale prev id conflicts.
    let stale = wa_engine::group::description_iq(&group.jid, "3EB0STALE", Some(&first), "x");
    assert!(matches!(
        alice.client.send_iq(stale).await,
        Err(wa_engine::SendError::Rejected { code: 409, .. })
    ));
    alice.client.set_group_description(&group.jid, "").await?;
    assert!(
        alice
            .client
            .group_info(&group.jid)
            .await?
            .description
            .is_none()
    );

    // Settings and disappearing timer.
    alice
        .client
        .set_group_setting(&group.jid, GroupSetting::Announce(true))
        .await?;
    alice
        .client
        .set_group_setting(&group.jid, GroupSetting::Locked(true))
        .await?;
    alice.client.set_group_ephemeral(&group.jid, 86_400).await?;
    let info = bob.client.group_info(&group.jid).await?;
    assert!(info.announce && info.locked);
    assert_eq!(info.ephemeral, Some(86_400));
    let announce = notification(&mut bob, |k| match k {
        NotificationKind::Group(_, x) => x.announce,
        _ => None,
    })
    .await?;
    assert!(announce);
    // The timer's notification makes Bob store the group's timer: his next group message
    // (he is an admin, so the announce setting lets him) carries `contextInfo.expiration`.
    let timer = notification(&mut bob, |k| match k {
        NotificationKind::Group(_, x) => x.ephemeral_secs,
        _ => None,
    })
    .await?;
    assert_eq!(timer, 86_400);
    bob.client
        .send_text(&group.jid, "this one disappears")
        .await?;
    let m = alice.next_message().await?;
    assert_eq!(m.text(), Some("this one disappears"));
    assert_eq!(m.content().expiration(), Some(86_400));

    // Invite link: Carol looks the group up, joins, and the link is revoked.
    let link = alice.client.group_invite_link(&group.jid).await?;
    assert!(link.starts_with("https://chat.whatsapp.com/"), "{link}");
    assert_eq!(alice.client.group_invite_link(&group.jid).await?, link);
    let preview = carol.client.group_info_from_invite(&link).await?;
    assert_eq!(preview.jid, group.jid);
    assert_eq!(carol.client.join_group_with_invite(&link).await?, group.jid);
    let info = alice.client.group_info(&group.jid).await?;
    assert_eq!(role_of(&info, &carol.user()), Some(ParticipantRole::Member));
    // Carol is no admin: no link for her (401), no settings (403).
    assert_eq!(
        carol
            .client
            .group_invite_link(&group.jid)
            .await
            .unwrap_err(),
        IqError::NotAuthorized
    );
    assert_eq!(
        carol
            .client
            .set_group_setting(&group.jid, GroupSetting::Locked(false))
            .await
            .unwrap_err(),
        IqError::Forbidden
    );
    let fresh = alice.client.revoke_group_invite(&group.jid).await?;
    assert_ne!(fresh, link);
    let code = notification(&mut bob, |k| match k {
        NotificationKind::Group(_, x) => x.invite_code.clone(),
        _ => None,
    })
    .await?;
    assert!(fresh.ends_with(&code));
    assert_eq!(
        carol
            .client
            .join_group_with_invite(&link)
            .await
            .unwrap_err(),
        IqError::NotAcceptable
    );

    // Demote Bob, then Carol leaves; the others are told.
    alice
        .client
        .demote_participants(&group.jid, &[bob.user()])
        .await?;
    carol.client.leave_group(&group.jid).await?;
    let left = notification(&mut alice, |k| match k {
        NotificationKind::Group(g, _) => g.changes.iter().find_map(|c| match c {
            GroupChange::Removed(j) => Some(j.clone()),
            _ => None,
        }),
        _ => None,
    })
    .await?;
    assert_eq!(left.first().map(Jid::user), Some(carol.user().user()));
    let info = alice.client.group_info(&group.jid).await?;
    assert_eq!(info.participants.len(), 2);
    assert_eq!(role_of(&info, &bob.user()), Some(ParticipantRole::Member));
    assert!(carol.client.joined_groups().await?.is_empty());
    Ok(())
}

/// A tiny valid-looking JPEG (SOI, APP0 marker, EOI): the sandbox checks the magic only.
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xFF, 0xD9,
];

#[tokio::test]
async fn profile_status_picture_and_push_name() -> anyhow::Result<()> {
    let sb = sandbox(42).await?;
    let mut alice = pair(&sb, "15550000044").await?;
    let bob = pair(&sb, "15550000045").await?;
    // A chat makes them contacts (status and picture changes reach contacts).
    alice.client.send_text(&bob.user(), "hi").await?;

    // Status text: set by Bob, read by Alice through usync, notified to Alice.
    bob.client.set_status_text("Out fishing").await?;
    let text = notification(&mut alice, |k| match k {
        NotificationKind::Status { text } => text.clone(),
        _ => None,
    })
    .await?;
    assert_eq!(text, "Out fishing");
    let statuses = alice.client.status_texts(&[bob.user()]).await?;
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].text.as_deref(), Some("Out fishing"));
    assert!(statuses[0].set_at > 0);
    assert!(matches!(
        bob.client.set_status_text(&"x".repeat(140)).await,
        Err(IqError::NotAcceptable)
    ));

    // Pictures: none yet, then Bob sets one; Alice is told and downloads the same bytes.
    assert!(
        alice
            .client
            .profile_picture(&bob.user(), false)
            .await?
            .is_none()
    );
    let id = bob.client.set_profile_picture(JPEG).await?;
    let (who, notified) = notification(&mut alice, |k| match k {
        NotificationKind::Picture {
            jid, picture_id, ..
        } => Some((jid.clone(), picture_id.clone())),
        _ => None,
    })
    .await?;
    assert_eq!(
        who.map(|j| j.user().to_owned()),
        Some(bob.user().user().to_owned())
    );
    assert_eq!(notified.as_deref(), Some(id.as_str()));
    let pic = alice
        .client
        .profile_picture(&bob.user(), false)
        .await?
        .expect("picture set");
    assert_eq!(pic.id, id);
    let body = reqwest::get(&pic.url)
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    assert_eq!(&body[..], JPEG);
    assert!(matches!(
        bob.client.set_profile_picture(b"not a jpeg").await,
        Err(IqError::NotAcceptable)
    ));
    bob.client.remove_profile_picture().await?;
    assert!(
        alice
            .client
            .profile_picture(&bob.user(), false)
            .await?
            .is_none()
    );

    // A group picture: set by a member, seen by the others (`picture` notification from
    // the group), as the preview too.
    let group = bob.client.create_group("Pics", &[alice.user()]).await?;
    let gid = bob.client.set_group_picture(&group.jid, JPEG).await?;
    let (who, notified) = notification(&mut alice, |k| match k {
        NotificationKind::Picture {
            jid, picture_id, ..
        } if jid.as_ref().is_some_and(Jid::is_group) => Some((jid.clone(), picture_id.clone())),
        _ => None,
    })
    .await?;
    assert_eq!(who, Some(group.jid.clone()));
    assert_eq!(notified.as_deref(), Some(gid.as_str()));
    let seen = alice
        .client
        .profile_picture(&group.jid, true)
        .await?
        .expect("group picture");
    assert_eq!(
        (seen.id.as_str(), seen.kind.as_str()),
        (gid.as_str(), "preview")
    );

    // Push name: without an app-state key only the presence carries it; the server (and
    // so the `notify` of Bob's next notifications) has the new name.
    let how = bob.client.set_push_name("Bobby").await?;
    assert!(matches!(
        how,
        wa_engine::PushNameSync::AppState | wa_engine::PushNameSync::PresenceOnly
    ));
    // The server stamps the sender's push name on messages (`notify`).
    bob.client.send_text(&alice.user(), "new name").await?;
    let m = alice.next_message().await?;
    assert_eq!(m.text(), Some("new name"));
    assert_eq!(m.info.push_name.as_deref(), Some("Bobby"));
    assert!(matches!(
        bob.client.set_push_name("").await,
        Err(IqError::NotAcceptable)
    ));
    Ok(())
}
