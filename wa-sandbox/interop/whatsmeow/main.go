// Command whatsmeow-harness runs a real whatsmeow client (go.mau.fi/whatsmeow, pinned in
// go.mod) against wa-sandbox and is driven by a test over JSON lines: events on stdout,
// commands on stdin, whatsmeow's own log on stderr. See README.md for the protocol.
//
// It never talks to WhatsApp: every WebSocket dial is rewritten to the loopback --ws-url,
// and the Noise certificate chain is checked against the sandbox's root (--cert-root),
// which replaces whatsmeow.WACertPubKey.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	// Pure-Go SQLite driver (registers "sqlite"): no cgo, no system library.
	_ "modernc.org/sqlite"
)

// Exit codes, as in the Baileys harness.
const (
	exitQuit     = 0
	exitInternal = 1
	exitArgs     = 2
	exitTimeout  = 3
	exitClosed   = 4
)

var (
	outMu sync.Mutex
	out   = json.NewEncoder(os.Stdout)
)

// emit writes one event line to stdout.
func emit(event string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["event"] = event
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(fields)
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "whatsmeow-harness: "+format+"\n", args...)
	os.Exit(code)
}

// loopbackURL parses a ws:// URL and refuses any host that is not loopback.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("scheme must be ws, got %q", u.Scheme)
	}
	host := u.Hostname()
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("host %q is not loopback", host)
		}
	}
	return u, nil
}

// sandboxTransport sends every request (whatsmeow dials wss://web.whatsapp.com/ws/chat) to
// the sandbox's plain ws:// URL instead: same method and headers, the sandbox's host and path.
type sandboxTransport struct {
	target *url.URL
	inner  http.RoundTripper
}

func (t *sandboxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme = "http"
	r.URL.Host = t.target.Host
	r.URL.Path = t.target.Path
	r.Host = t.target.Host
	return t.inner.RoundTrip(r)
}

func sandboxHTTPClient(target *url.URL) *http.Client {
	inner := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ForceAttemptHTTP2: false,
	}
	return &http.Client{Transport: &sandboxTransport{target: target, inner: inner}}
}

// mediaTransport sends whatsmeow's media requests (always https:// to the hosts media_conn
// named) to the sandbox's media host over plain http, and only to loopback hosts.
type mediaTransport struct {
	inner http.RoundTripper
}

func (t *mediaTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("refusing non-loopback media host %q", host)
	}
	r := req.Clone(req.Context())
	r.URL.Scheme = "http"
	return t.inner.RoundTrip(r)
}

type command struct {
	Cmd  string          `json:"cmd"`
	To   string          `json:"to"`
	Text string          `json:"text"`
	ID   string          `json:"id"`
	Ref  json.RawMessage `json:"ref"`
	// app_state_send: "mute", "archive" or "pin"; fetch_app_state: a collection name.
	Patch string `json:"patch"`
	Name  string `json:"name"`
	Full  bool   `json:"full"`
	// Rich messages (issue 13 item 5): send_reaction (target, sender, emoji), send_edit
	// (target, text), send_revoke (target), send_poll (name, options, selectable),
	// vote_poll (target = a poll received earlier, options).
	Target     string   `json:"target"`
	Sender     string   `json:"sender"`
	Emoji      string   `json:"emoji"`
	Options    []string `json:"options"`
	Selectable int      `json:"selectable"`
	// Disappearing timers, ephemeral texts, view-once images, delete for me (richmore.go).
	commandMore
	// Groups (issue 13, group lifecycle): group_info (to = group JID), set_group_name (to,
	// text), update_group_participants (to, patch = add|remove|promote|demote, options =
	// user JIDs).
}

// unknownBytesField returns the bytes of field `num` among a message's unknown fields (our
// pinned whatsmeow predates SyncActionValue.nctSaltSyncAction (80) and HistorySync.nctSalt
// (19), so they arrive as unknown fields; whatsmeow keeps them, and we read them raw).
func unknownBytesField(raw []byte, num protowire.Number) []byte {
	for len(raw) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(raw)
		if tagLen < 0 {
			return nil
		}
		raw = raw[tagLen:]
		valLen := protowire.ConsumeFieldValue(n, typ, raw)
		if valLen < 0 {
			return nil
		}
		if n == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(raw)
			return v
		}
		raw = raw[valLen:]
	}
	return nil
}

// appStateFields describes what whatsmeow decoded from one app-state mutation.
func appStateFields(index []string, v *waSyncAction.SyncActionValue) map[string]any {
	f := map[string]any{"index": index, "timestamp": v.GetTimestamp()}
	if a := v.GetPushNameSetting(); a != nil {
		f["pushName"] = a.GetName()
	}
	if a := v.GetContactAction(); a != nil {
		f["contactFullName"] = a.GetFullName()
		f["contactFirstName"] = a.GetFirstName()
		f["contactLid"] = a.GetLidJID()
	}
	if a := v.GetMuteAction(); a != nil {
		f["muted"] = a.GetMuted()
		f["muteEnd"] = a.GetMuteEndTimestamp()
	}
	if a := v.GetArchiveChatAction(); a != nil {
		f["archived"] = a.GetArchived()
	}
	if a := v.GetPinAction(); a != nil {
		f["pinned"] = a.GetPinned()
	}
	if a := v.GetMarkChatAsReadAction(); a != nil {
		f["read"] = a.GetRead()
	}
	if inner := unknownBytesField(v.ProtoReflect().GetUnknown(), 80); inner != nil {
		if salt := unknownBytesField(inner, 1); salt != nil {
			f["nctSaltB64"] = base64.StdEncoding.EncodeToString(salt)
		}
	}
	return f
}

type harness struct {
	cli *whatsmeow.Client
	// Infos of received messages by id (vote_poll needs the poll's).
	infosMu sync.Mutex
	infos   map[string]types.MessageInfo
}

// richFields adds what a reaction, edit, revoke, poll or poll vote carries to a message
// event (issue 13 item 5).
func (h *harness) richFields(v *events.Message, fields map[string]any) {
	m := v.Message
	if r := m.GetReactionMessage(); r != nil {
		fields["reaction"] = map[string]any{"emoji": r.GetText(), "target": r.GetKey().GetID()}
	}
	if p := m.GetProtocolMessage(); p != nil {
		fields["protocol"] = map[string]any{
			"type":       p.GetType().String(),
			"target":     p.GetKey().GetID(),
			"editedText": textOf(p.GetEditedMessage()),
		}
	}
	poll := m.GetPollCreationMessage()
	if poll == nil {
		poll = m.GetPollCreationMessageV3()
	}
	if poll != nil {
		names := []string{}
		for _, o := range poll.GetOptions() {
			names = append(names, o.GetOptionName())
		}
		fields["poll"] = map[string]any{"name": poll.GetName(), "options": names, "selectable": poll.GetSelectableOptionsCount()}
	}
	if m.GetPollUpdateMessage() != nil {
		vote, err := h.cli.DecryptPollVote(context.Background(), v)
		if err != nil {
			fields["pollVoteError"] = err.Error()
		} else {
			hashes := []string{}
			for _, o := range vote.GetSelectedOptions() {
				hashes = append(hashes, hex.EncodeToString(o))
			}
			fields["pollVote"] = map[string]any{"target": m.GetPollUpdateMessage().GetPollCreationMessageKey().GetID(), "selected": hashes}
			recordPollVote(m.GetPollUpdateMessage().GetPollCreationMessageKey().GetID(), v.Info.Sender, vote.GetSelectedOptions())
		}
	}
}

func (h *harness) onEvent(evt any) {
	h.onEventMore(evt)
	switch v := evt.(type) {
	case *events.QR:
		code := ""
		if len(v.Codes) > 0 {
			code = v.Codes[0]
		}
		emit("qr", map[string]any{"qr": code, "codes": len(v.Codes)})
	case *events.PairSuccess:
		emit("pair_success", map[string]any{"id": v.ID.String(), "lid": v.LID.String(), "platform": v.Platform, "businessName": v.BusinessName})
	case *events.PairError:
		emit("pair_error", map[string]any{"id": v.ID.String(), "error": errString(v.Error)})
	case *events.Connected:
		me := map[string]any{}
		if id := h.cli.Store.ID; id != nil {
			me["id"] = id.String()
		}
		if !h.cli.Store.LID.IsEmpty() {
			me["lid"] = h.cli.Store.LID.String()
		}
		emit("connected", map[string]any{"me": me})
	case *events.Disconnected:
		emit("disconnected", nil)
	case *events.StreamError:
		emit("stream_error", map[string]any{"code": v.Code})
	case *events.ConnectFailure:
		emit("connect_failure", map[string]any{"reason": int(v.Reason), "message": v.Message})
	case *events.LoggedOut:
		emit("logged_out", map[string]any{"reason": int(v.Reason), "onConnect": v.OnConnect})
	case *events.StreamReplaced:
		emit("stream_replaced", nil)
	case *events.KeepAliveTimeout:
		emit("keepalive_timeout", map[string]any{"errorCount": v.ErrorCount})
	case *events.OfflineSyncCompleted:
		emit("offline_sync_completed", map[string]any{"count": v.Count})
	case *events.Message:
		fields := map[string]any{
			"id":             v.Info.ID,
			"chat":           v.Info.Chat.String(),
			"sender":         v.Info.Sender.String(),
			"senderAlt":      jidOrNil(v.Info.SenderAlt),
			"fromMe":         v.Info.IsFromMe,
			"isGroup":        v.Info.IsGroup,
			"pushName":       v.Info.PushName,
			"timestamp":      v.Info.Timestamp.Unix(),
			"text":           textOf(v.Message),
			"hasSKDM":        v.Message.GetSenderKeyDistributionMessage() != nil,
			"unavailable":    v.UnavailableRequestID != "",
			"retryCount":     v.RetryCount,
			"addressingMode": string(v.Info.AddressingMode),
		}
		h.richFields(v, fields)
		h.richMoreFields(v, fields)
		h.infosMu.Lock()
		if h.infos == nil {
			h.infos = map[string]types.MessageInfo{}
		}
		h.infos[v.Info.ID] = v.Info
		h.infosMu.Unlock()
		emit("message", fields)
	case *events.AppState:
		if v.SyncActionValue != nil {
			emit("app_state", appStateFields(v.Index, v.SyncActionValue))
		}
	case *events.AppStateSyncComplete:
		emit("app_state_sync_complete", map[string]any{"name": string(v.Name)})
	case *events.PushNameSetting:
		emit("push_name_setting", map[string]any{"name": v.Action.GetName(), "fromFullSync": v.FromFullSync})
	case *events.HistorySync:
		d := v.Data
		convs := []map[string]any{}
		for _, c := range d.GetConversations() {
			convs = append(convs, map[string]any{"id": c.GetID(), "name": c.GetName(), "pnJid": c.GetPnJID(), "lidJid": c.GetLidJID()})
		}
		names := []map[string]any{}
		for _, p := range d.GetPushnames() {
			names = append(names, map[string]any{"id": p.GetID(), "pushname": p.GetPushname()})
		}
		maps := []map[string]any{}
		for _, m := range d.GetPhoneNumberToLidMappings() {
			maps = append(maps, map[string]any{"pn": m.GetPnJID(), "lid": m.GetLidJID()})
		}
		fields := map[string]any{
			"syncType":      d.GetSyncType().String(),
			"conversations": convs,
			"pushnames":     names,
			"pnLidMappings": maps,
		}
		if salt := unknownBytesField(d.ProtoReflect().GetUnknown(), 19); salt != nil {
			fields["nctSaltB64"] = base64.StdEncoding.EncodeToString(salt)
		}
		emit("history_sync", fields)
	case *events.UndecryptableMessage:
		emit("undecryptable", map[string]any{
			"id":            v.Info.ID,
			"chat":          v.Info.Chat.String(),
			"sender":        v.Info.Sender.String(),
			"isUnavailable": v.IsUnavailable,
			"failType":      string(v.DecryptFailMode),
		})
	case *events.Presence:
		var lastSeen any
		if !v.LastSeen.IsZero() {
			lastSeen = v.LastSeen.Unix()
		}
		emit("presence", map[string]any{"from": v.From.String(), "unavailable": v.Unavailable, "lastSeen": lastSeen})
	case *events.ChatPresence:
		emit("chat_presence", map[string]any{
			"chat":   v.Chat.String(),
			"sender": v.Sender.String(),
			"state":  string(v.State),
			"media":  string(v.Media),
		})
	case *events.CallOffer:
		emit("call_offer", map[string]any{"from": v.From.String(), "callId": v.CallID, "callCreator": v.CallCreator.String()})
	case *events.CallReject:
		emit("call_reject", map[string]any{"from": v.From.String(), "callId": v.CallID, "callCreator": v.CallCreator.String()})
	case *events.CallTerminate:
		emit("call_terminate", map[string]any{"from": v.From.String(), "callId": v.CallID, "reason": v.Reason})
	case *events.GroupInfo:
		var name any
		if v.Name != nil {
			name = v.Name.Name
		}
		joined := make([]string, 0, len(v.Join))
		for _, j := range v.Join {
			joined = append(joined, j.String())
		}
		promoted := make([]string, 0, len(v.Promote))
		for _, j := range v.Promote {
			promoted = append(promoted, j.String())
		}
		var announce, topic any
		if v.Announce != nil {
			announce = v.Announce.IsAnnounce
		}
		if v.Topic != nil {
			topic = v.Topic.Topic
		}
		emit("group_update", map[string]any{
			"announce": announce,
			"topic":    topic,
			"jid":      v.JID.String(),
			"sender":   jidPtrOrNil(v.Sender),
			"name":     name,
			"join":     joined,
			"promote":  promoted,
			"unknown":  len(v.UnknownChanges),
		})
	case *events.JoinedGroup:
		emit("joined_group", map[string]any{"jid": v.JID.String(), "name": v.Name, "reason": v.Reason})
	case *events.Receipt:
		ty := string(v.Type)
		if v.Type == types.ReceiptTypeDelivered {
			ty = "delivered"
		}
		emit("receipt", map[string]any{
			"ids":    v.MessageIDs,
			"chat":   v.Chat.String(),
			"sender": v.Sender.String(),
			"fromMe": v.IsFromMe,
			"type":   ty,
		})
	}
}

func jidOrNil(j types.JID) any {
	if j.IsEmpty() {
		return nil
	}
	return j.String()
}

func jidPtrOrNil(j *types.JID) any {
	if j == nil || j.IsEmpty() {
		return nil
	}
	return j.String()
}

func errString(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}

// textOf returns the text of a conversation or extended text message, else nil.
func textOf(m *waE2E.Message) any {
	if m == nil {
		return nil
	}
	if m.Conversation != nil {
		return m.GetConversation()
	}
	if m.ExtendedTextMessage != nil {
		return m.GetExtendedTextMessage().GetText()
	}
	return nil
}

func (h *harness) run(ctx context.Context, c command) {
	if h.runMore(ctx, c) {
		return
	}
	switch c.Cmd {
	case "send_text":
		if !h.cli.IsLoggedIn() {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": "not logged in", "ref": c.Ref})
			return
		}
		to, err := types.ParseJID(c.To)
		if err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		msg := &waE2E.Message{Conversation: proto.String(c.Text)}
		id := c.ID
		if id == "" {
			id = h.cli.GenerateMessageID()
		}
		sendCtx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		resp, err := h.cli.SendMessage(sendCtx, to, msg, whatsmeow.SendRequestExtra{ID: id})
		if err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "id": id, "ref": c.Ref})
			return
		}
		emit("sent", map[string]any{"id": resp.ID, "to": to.String(), "serverTimestamp": resp.Timestamp.Unix(), "ref": c.Ref})
	case "send_reaction", "send_edit", "send_revoke", "send_poll", "vote_poll":
		h.sendRich(ctx, c)
	case "poll_tally":
		// target: a poll id, options: its option names in order (polltally.go).
		h.pollTally(c)
	case "app_state_send":
		// whatsmeow builds and encrypts the patch itself (appstate.Build*), on its own state.
		target, err := types.ParseJID(c.To)
		if err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		var patch appstate.PatchInfo
		switch c.Patch {
		case "mute":
			patch = appstate.BuildMute(target, true, 0)
		case "archive":
			patch = appstate.BuildArchive(target, true, time.Now(), nil)
		case "pin":
			patch = appstate.BuildPin(target, true)
		default:
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": "unknown patch " + c.Patch, "ref": c.Ref})
			return
		}
		if err := h.cli.SendAppState(ctx, patch); err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		emit("app_state_sent", map[string]any{"patch": c.Patch, "collection": string(patch.Type), "ref": c.Ref})
	case "fetch_app_state":
		// whatsmeow fetches (and verifies: MACs, LTHash) one collection; full = from scratch.
		if err := h.cli.FetchAppState(ctx, appstate.WAPatchName(c.Name), c.Full, false); err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		version, _, err := h.cli.Store.AppState.GetAppStateVersion(ctx, c.Name)
		if err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		emit("app_state_fetched", map[string]any{"name": c.Name, "version": version, "ref": c.Ref})
	case "get_state":
		// What whatsmeow's store holds now: push name, latest app-state key, versions.
		keyID, err := h.cli.Store.AppStateKeys.GetLatestAppStateSyncKeyID(ctx)
		if err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		versions := map[string]any{}
		for _, name := range appstate.AllPatchNames {
			v, _, err := h.cli.Store.AppState.GetAppStateVersion(ctx, string(name))
			if err == nil {
				versions[string(name)] = v
			}
		}
		contacts := map[string]any{}
		if all, err := h.cli.Store.Contacts.GetAllContacts(ctx); err == nil {
			for jid, info := range all {
				contacts[jid.String()] = info.FullName
			}
		}
		emit("state", map[string]any{
			"pushName":    h.cli.Store.PushName,
			"latestKeyId": fmt.Sprintf("%X", keyID),
			"versions":    versions,
			"contacts":    contacts,
			"ref":         c.Ref,
		})
	case "send_presence":
		// whatsmeow refuses to send presence without a push name (ErrNoPushName); the
		// sandbox phone shares none unless phone sync is on, so set a default one.
		if h.cli.Store.PushName == "" {
			h.cli.Store.PushName = "whatsmeow-harness"
		}
		state := types.PresenceAvailable
		if c.Text == "unavailable" {
			state = types.PresenceUnavailable
		}
		if err := h.cli.SendPresence(ctx, state); err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		emit("presence_sent", map[string]any{"state": string(state), "ref": c.Ref})
	case "subscribe_presence":
		to, err := types.ParseJID(c.To)
		if err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		if err := h.cli.SubscribePresence(ctx, to); err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		emit("subscribed", map[string]any{"to": to.String(), "ref": c.Ref})
	case "send_chat_presence":
		// text: composing | recording | paused.
		to, err := types.ParseJID(c.To)
		if err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		state, media := types.ChatPresenceComposing, types.ChatPresenceMediaText
		switch c.Text {
		case "recording":
			media = types.ChatPresenceMediaAudio
		case "paused":
			state = types.ChatPresencePaused
		}
		if err := h.cli.SendChatPresence(ctx, to, state, media); err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		emit("chat_presence_sent", map[string]any{"to": to.String(), "state": c.Text, "ref": c.Ref})
	case "reject_call":
		// to: the caller (call-creator), id: the call id.
		from, err := types.ParseJID(c.To)
		if err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		if err := h.cli.RejectCall(ctx, from, c.ID); err != nil {
			emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
			return
		}
		emit("call_rejected", map[string]any{"to": from.String(), "callId": c.ID, "ref": c.Ref})
	case "group_info", "set_group_name", "update_group_participants":
		h.groupCommand(ctx, c)
	case "quit":
		emit("exit", map[string]any{"reason": "quit", "ref": c.Ref})
		h.cli.Disconnect()
		os.Exit(exitQuit)
	default:
		emit("error", map[string]any{"source": "command", "message": "unknown command " + c.Cmd, "ref": c.Ref})
	}
}

func main() {
	wsURL := flag.String("ws-url", os.Getenv("WA_WS_URL"), "sandbox WebSocket URL (ws://loopback:port/path)")
	certRoot := flag.String("cert-root", os.Getenv("WA_CERT_ROOT"), "base64 of the sandbox's 32-byte Noise root public key")
	dataDir := flag.String("data-dir", os.Getenv("WA_DATA_DIR"), "directory for the SQLite store (created if missing)")
	pushName := flag.String("push-name", "", "push name to set (sent with presence available after connecting)")
	timeout := flag.Duration("timeout", 150*time.Second, "overall lifetime")
	logLevel := flag.String("log-level", "WARN", "whatsmeow log level on stderr (DEBUG, INFO, WARN, ERROR)")
	flag.Parse()

	if *wsURL == "" || *certRoot == "" || *dataDir == "" {
		fail(exitArgs, "--ws-url, --cert-root and --data-dir are required")
	}
	target, err := loopbackURL(*wsURL)
	if err != nil {
		fail(exitArgs, "--ws-url: %v", err)
	}
	root, err := base64.StdEncoding.DecodeString(*certRoot)
	if err != nil || len(root) != 32 {
		fail(exitArgs, "--cert-root must be base64 of 32 bytes")
	}
	// The sandbox's Noise root replaces WhatsApp's (whatsmeow: handshake.go verifyServerCert).
	copy(whatsmeow.WACertPubKey[:], root)
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		fail(exitArgs, "--data-dir: %v", err)
	}
	store.SetOSInfo("wa-rs whatsmeow harness", [3]uint32{0, 1, 0})

	ctx := context.Background()
	// whatsmeow's log goes to stderr: stdout is the event stream.
	level, err := zerolog.ParseLevel(strings.ToLower(*logLevel))
	if err != nil {
		fail(exitArgs, "--log-level: %v", err)
	}
	logger := waLog.Zerolog(zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true}).Level(level).With().Timestamp().Logger())

	dsn := "file:" + filepath.Join(*dataDir, "store.db") + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		fail(exitInternal, "opening sqlite: %v", err)
	}
	container := sqlstore.NewWithDB(db, "sqlite3", logger.Sub("DB"))
	if err := container.Upgrade(ctx); err != nil {
		fail(exitInternal, "store upgrade: %v", err)
	}
	device, err := container.GetFirstDevice(ctx)
	if err != nil {
		fail(exitInternal, "store device: %v", err)
	}
	cli := whatsmeow.NewClient(device, logger.Sub("Client"))
	hc := sandboxHTTPClient(target)
	cli.SetWebsocketHTTPClient(hc)
	cli.SetPreLoginHTTPClient(hc)
	cli.SetMediaHTTPClient(&http.Client{Transport: &mediaTransport{inner: &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}})
	// One events.AppState per mutation also on full syncs, so the test sees what whatsmeow
	// decoded (and verified) from the sandbox phone's patches.
	cli.EmitAppStateEventsOnFullSync = true
	cli.EnableAutoReconnect = true
	h := &harness{cli: cli}
	cli.AddEventHandler(h.onEvent)
	if *pushName != "" {
		cli.AddEventHandler(func(evt any) {
			if _, ok := evt.(*events.Connected); ok {
				go func() {
					if device.PushName != *pushName {
						device.PushName = *pushName
						_ = device.Save(ctx)
					}
					if err := cli.SendPresence(ctx, types.PresenceAvailable); err != nil {
						emit("error", map[string]any{"source": "push_name", "message": err.Error()})
					}
				}()
			}
		})
	}

	emit("connection", map[string]any{"connection": "connecting", "registered": device.ID != nil})
	if err := cli.Connect(); err != nil {
		emit("error", map[string]any{"source": "connect", "message": err.Error()})
		emit("exit", map[string]any{"reason": "connection closed"})
		os.Exit(exitClosed)
	}

	go func() {
		time.Sleep(*timeout)
		emit("timeout", map[string]any{"timeoutMs": timeout.Milliseconds()})
		os.Exit(exitTimeout)
	}()

	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Bytes()
		if len(line) == 0 {
			continue
		}
		var c command
		if err := json.Unmarshal(line, &c); err != nil {
			emit("error", map[string]any{"source": "command", "message": err.Error(), "line": string(line)})
			continue
		}
		go h.run(ctx, c)
	}
	if err := scanner.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		emit("error", map[string]any{"source": "stdin", "message": err.Error()})
	}
	// stdin closed: keep running until the overall timeout (as the Baileys harness does).
	select {}
}

// sendRich builds a reaction, edit, revoke, poll or poll vote with whatsmeow's own builders
// (send.go, msgsecret.go) and sends it; emits "sent" or "error".
func (h *harness) sendRich(ctx context.Context, c command) {
	fail := func(msg string) {
		emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": msg, "ref": c.Ref})
	}
	if !h.cli.IsLoggedIn() {
		fail("not logged in")
		return
	}
	to, err := types.ParseJID(c.To)
	if err != nil {
		fail(err.Error())
		return
	}
	var msg *waE2E.Message
	switch c.Cmd {
	case "send_reaction":
		sender := types.EmptyJID
		if c.Sender != "" {
			if sender, err = types.ParseJID(c.Sender); err != nil {
				fail(err.Error())
				return
			}
		}
		msg = h.cli.BuildReaction(to, sender, c.Target, c.Emoji)
	case "send_edit":
		msg = h.cli.BuildEdit(to, c.Target, &waE2E.Message{Conversation: proto.String(c.Text)})
	case "send_revoke":
		msg = h.cli.BuildRevoke(to, types.EmptyJID, c.Target)
	case "send_poll":
		msg = h.cli.BuildPollCreation(c.Name, c.Options, c.Selectable)
	case "vote_poll":
		h.infosMu.Lock()
		info, ok := h.infos[c.Target]
		h.infosMu.Unlock()
		if !ok {
			fail("unknown poll " + c.Target)
			return
		}
		if msg, err = h.cli.BuildPollVote(ctx, &info, c.Options); err != nil {
			fail(err.Error())
			return
		}
	}
	sendCtx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	resp, err := h.cli.SendMessage(sendCtx, to, msg)
	if err != nil {
		fail(err.Error())
		return
	}
	if c.Cmd == "vote_poll" && h.cli.Store.ID != nil {
		recordPollVote(c.Target, *h.cli.Store.ID, whatsmeow.HashPollOptions(c.Options))
	}
	if c.Cmd == "send_poll" && h.cli.Store.ID != nil {
		// Our own poll, so vote_poll can name it too.
		h.infosMu.Lock()
		if h.infos == nil {
			h.infos = map[string]types.MessageInfo{}
		}
		h.infos[resp.ID] = types.MessageInfo{
			MessageSource: types.MessageSource{Chat: to, Sender: h.cli.Store.ID.ToNonAD(), IsFromMe: true},
			ID:            resp.ID,
		}
		h.infosMu.Unlock()
	}
	emit("sent", map[string]any{"id": resp.ID, "to": to.String(), "serverTimestamp": resp.Timestamp.Unix(), "ref": c.Ref})
}

// groupCommand runs the group commands (whatsmeow group.go: GetGroupInfo, SetGroupName,
// UpdateGroupParticipants) and emits "group_info", "group_name_set" or
// "group_participants_updated", or "error".
func (h *harness) groupCommand(ctx context.Context, c command) {
	fail := func(err error) {
		emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": err.Error(), "ref": c.Ref})
	}
	group, err := types.ParseJID(c.To)
	if err != nil {
		fail(err)
		return
	}
	reqCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch c.Cmd {
	case "group_info":
		info, err := h.cli.GetGroupInfo(reqCtx, group)
		if err != nil {
			fail(err)
			return
		}
		participants := make([]map[string]any, 0, len(info.Participants))
		for _, p := range info.Participants {
			participants = append(participants, map[string]any{
				"jid": p.JID.String(), "isAdmin": p.IsAdmin, "isSuperAdmin": p.IsSuperAdmin,
			})
		}
		emit("group_info", map[string]any{
			"jid": info.JID.String(), "name": info.Name, "nameSetBy": jidOrNil(info.NameSetBy),
			"topic": info.Topic, "announce": info.IsAnnounce, "locked": info.IsLocked,
			"participants": participants, "ref": c.Ref,
		})
	case "set_group_name":
		if err := h.cli.SetGroupName(reqCtx, group, c.Text); err != nil {
			fail(err)
			return
		}
		emit("group_name_set", map[string]any{"jid": group.String(), "name": c.Text, "ref": c.Ref})
	case "update_group_participants":
		users := make([]types.JID, 0, len(c.Options))
		for _, o := range c.Options {
			u, err := types.ParseJID(o)
			if err != nil {
				fail(err)
				return
			}
			users = append(users, u)
		}
		out, err := h.cli.UpdateGroupParticipants(reqCtx, group, users, whatsmeow.ParticipantChange(c.Patch))
		if err != nil {
			fail(err)
			return
		}
		results := make([]map[string]any, 0, len(out))
		for _, p := range out {
			results = append(results, map[string]any{"jid": p.JID.String(), "error": p.Error})
		}
		emit("group_participants_updated", map[string]any{"jid": group.String(), "action": c.Patch, "participants": results, "ref": c.Ref})
	}
}
