"""Drives wa-server's Evolution API v2 dialect with the real Python clients from PyPI
(pinned in requirements-evolution.txt): `pyevolutionapi` (pydantic models: a response
that does not parse into them fails the run) and `evolutionapi` (the other published
client). Run by tests/dialect_evolution.rs, which starts the server with the embedded
sandbox, a peer account with a connected client and a webhook receiver, and passes:

  EVO_BASE   the dialect's base URL (ends with /evolution/)
  EVO_ROOT   the server's root URL (for the native sandbox scan route)
  EVO_KEY    the global API key
  EVO_PEER   the peer's phone number
  EVO_HOOK   the webhook receiver's URL

Prints one JSON line {"instance", "token", "text_id", ...} for the Rust side to check the
webhooks against; any exception fails the run (exit 1).
"""

import base64
import json
import os
import sys
import struct
import time
import zlib

import httpx
from evolutionapi.client import EvolutionClient as EvoClient2
from pyevolutionapi import EvolutionClient

BASE = os.environ["EVO_BASE"]
ROOT = os.environ["EVO_ROOT"]
KEY = os.environ["EVO_KEY"]
PEER = os.environ["EVO_PEER"]
HOOK = os.environ["EVO_HOOK"]
NAME = "pyevo"



def png(width=8, height=8):
    """A small valid PNG (grey square), made here: chunks with their CRCs."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = base64.b64encode(png()).decode()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def wait(what, fn, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def main():
    client = EvolutionClient(base_url=BASE, api_key=KEY, max_retries=1)
    check(client.health_check(), "health check (GET /)")

    created = client.instance.create(
        NAME,
        qrcode=True,
        integration="WHATSAPP-BAILEYS",
        webhook={"url": HOOK, "byEvents": True, "base64": False, "events": []},
    )
    token = created.hash
    check(token, f"create: hash {created!r}")
    check(created.instance.instance_name == NAME, f"create: instance {created!r}")
    check(created.qr_code_base64 and created.qr_code_base64.startswith("data:image/png"), "create: qrcode")

    instances = client.instance.fetch_instances()
    check(any(i.id and i.profile_name is None or True for i in instances), "fetchInstances parses")

    # Pair through the sandbox phone (the native sandbox route).
    r = httpx.post(f"{ROOT}/api/sessions/{NAME}/sandbox/scan", headers={"x-api-key": KEY}, json={})
    check(r.status_code == 200, f"sandbox scan: {r.status_code} {r.text}")
    wait(
        "state open",
        lambda: client.instance.connection_state(NAME)["instance"]["state"] == "open",
    )

    # From here on with the instance token only.
    inst = EvolutionClient(base_url=BASE, api_key=token, max_retries=1)
    own = inst.instance.fetch_instances()
    check(len(own) == 1, f"instance token sees only its instance: {own!r}")

    numbers = inst.chat.whatsapp_numbers(NAME, [PEER, "15550309999"])
    check(numbers[0]["exists"] is True and numbers[1]["exists"] is False, f"whatsappNumbers {numbers}")

    # set_webhook() of pyevolutionapi 0.1.1 cannot serialise its own HttpUrl field: post the
    # body it would send (n8n's key spellings) through the client's transport, then parse
    # the answers into its model.
    from pyevolutionapi.models.webhook import WebhookResponse

    row = inst.webhook._post(
        f"/webhook/set/{NAME}",
        json={"webhook": {"enabled": True, "url": HOOK, "webhookByEvents": True, "webhookBase64": False, "events": []}},
    )
    check(row["webhookByEvents"] is True and row["url"] == HOOK, f"webhook/set {row}")
    WebhookResponse.model_validate(row)
    found_hook = inst.webhook.find_webhook(NAME)
    check(found_hook is not None, "webhook/find parses")

    sent = inst.messages.send_text(NAME, PEER, "hello from pyevolutionapi")
    text_id = sent.message_id
    check(text_id, f"sendText: key {sent!r}")
    media = inst.messages.send_media(NAME, PEER, "image", PNG, caption="a pixel", mimetype="image/png", fileName="p.png")
    check(media.message_id, f"sendMedia {media!r}")
    loc = inst.messages.send_location(NAME, PEER, "Monas", "Jakarta", -6.1754, 106.8272)
    check(loc.message_id, f"sendLocation {loc!r}")
    card = inst.messages.send_contact(NAME, PEER, [{"fullName": "Ana", "phoneNumber": "5511999999999", "wuid": "5511999999999"}])
    check(card.message_id, f"sendContact {card!r}")
    react = inst.messages.send_reaction(
        NAME, {"id": text_id, "remoteJid": f"{PEER}@s.whatsapp.net", "fromMe": True}, "👍"
    )
    check(react.message_id, f"sendReaction {react!r}")
    poll = inst.messages.send_poll(NAME, PEER, "Lunch?", ["yes", "no"], selectable_count=1)
    check(poll.message_id, f"sendPoll {poll!r}")

    found = inst.chat.find_messages(NAME, where={"key": {"remoteJid": f"{PEER}@s.whatsapp.net"}}, page=1, offset=50)
    ids = [m["key"]["id"] for m in found["messages"]["records"]]
    check(text_id in ids and media.message_id in ids, f"findMessages {found}")
    chats = inst.chat.find_chats(NAME)
    check(any(c.id == f"{PEER}@s.whatsapp.net" for c in chats), f"findChats {chats}")
    contacts = inst.chat.find_contacts(NAME)
    check(any(c.id == f"{PEER}@s.whatsapp.net" for c in contacts), f"findContacts {contacts}")
    presence = inst.chat.send_presence(NAME, PEER, "composing", 0)
    check(presence.get("presence") == "composing", f"sendPresence {presence}")

    # Groups: create with the peer, list, read its participants.
    group = inst.group.create(NAME, "Evo team", participants=[PEER])
    groups = inst.group.fetch_all_groups(NAME, get_participants=True)
    check(any(g.subject == "Evo team" for g in groups), f"fetchAllGroups {groups}")
    gid = next(g.id for g in groups if g.subject == "Evo team")
    parts = inst.group.get_participants(NAME, gid)
    check(any(p["id"] == f"{PEER}@s.whatsapp.net" for p in parts["participants"]), f"participants {parts}")

    # The other client: evolutionapi (raw dicts).
    other = EvoClient2(base_url=BASE.rstrip("/"), api_token=KEY)
    info = other.instances.fetch_instances()
    check(isinstance(info, list) and any(i.get("name") == NAME for i in info), f"evolutionapi fetch_instances {info}")
    state = other.instance_operations.get_connection_state(NAME, token)
    check(state["instance"]["state"] == "open", f"evolutionapi connection state {state}")

    from evolutionapi.models.message import TextMessage

    sent2 = other.messages.send_text(NAME, TextMessage(number=PEER, text="hello from evolutionapi"), token)
    check(sent2.get("key", {}).get("fromMe") is True, f"evolutionapi send_text {sent2}")

    print(json.dumps({"instance": NAME, "token": token, "text_id": text_id, "media_id": media.message_id}))
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure fails the run, with its reason
        import traceback

        traceback.print_exc()
        print(f"FAILED: {type(e).__name__}: {e} {getattr(e, 'response_data', '')}", file=sys.stderr)
        sys.exit(1)
