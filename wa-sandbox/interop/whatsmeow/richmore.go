package main

// Issue 13 item 5, the rest: disappearing-message timers, ephemeral messages, view-once media
// and delete for me. Kept apart from main.go (which calls runMore, richMoreFields and
// onEventMore once each) so other additions to the harness merge cleanly.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// commandMore holds the fields of the commands below (embedded in command):
//   - set_disappearing {to, seconds}: whatsmeow's SetDisappearingTimer (1:1: the
//     EPHEMERAL_SETTING protocol message);
//   - send_ephemeral_text {to, text, seconds, wrap}: an extendedTextMessage with
//     contextInfo.expiration = seconds; wrap = in the older ephemeralMessage wrapper;
//   - send_view_once {to, dataB64, mimetype, text (caption)}: the image uploaded with
//     whatsmeow's Upload and sent as viewOnceMessageV2 { imageMessage { viewOnce: true } };
//   - send_link_preview {to, text, target (the URL), name (title), options[0]
//     (description)}: an extendedTextMessage with a preview card;
//   - delete_for_me {to (chat), target (message id), fromMe, sender}: an app-state
//     ["deleteMessageForMe", chat, id, fromMe, sender] mutation (regular_high, version 3),
//     built by hand: this whatsmeow has no builder for it, only the parser.
type commandMore struct {
	Seconds  int    `json:"seconds"`
	Wrap     bool   `json:"wrap"`
	DataB64  string `json:"dataB64"`
	Mimetype string `json:"mimetype"`
	FromMe   bool   `json:"fromMe"`
}

// runMore runs the commands above; false for any other command.
func (h *harness) runMore(ctx context.Context, c command) bool {
	switch c.Cmd {
	case "set_disappearing", "send_ephemeral_text", "send_view_once", "delete_for_me", "send_link_preview":
	default:
		return false
	}
	fail := func(msg string) {
		emit("error", map[string]any{"source": "command", "cmd": c.Cmd, "message": msg, "ref": c.Ref})
	}
	if !h.cli.IsLoggedIn() {
		fail("not logged in")
		return true
	}
	to, err := types.ParseJID(c.To)
	if err != nil {
		fail(err.Error())
		return true
	}
	sendCtx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	var msg *waE2E.Message
	switch c.Cmd {
	case "set_disappearing":
		if err := h.cli.SetDisappearingTimer(sendCtx, to, time.Duration(c.Seconds)*time.Second, time.Now()); err != nil {
			fail(err.Error())
			return true
		}
		emit("disappearing_set", map[string]any{"to": to.String(), "seconds": c.Seconds, "ref": c.Ref})
		return true
	case "delete_for_me":
		fromMe, sender := "0", "0"
		if c.FromMe {
			fromMe = "1"
		}
		if c.Sender != "" {
			sender = c.Sender
		}
		patch := appstate.PatchInfo{
			Type: appstate.WAPatchRegularHigh,
			Mutations: []appstate.MutationInfo{{
				Index:   []string{appstate.IndexDeleteMessageForMe, to.String(), c.Target, fromMe, sender},
				Version: 3,
				Value: &waSyncAction.SyncActionValue{
					DeleteMessageForMeAction: &waSyncAction.DeleteMessageForMeAction{
						DeleteMedia:      proto.Bool(false),
						MessageTimestamp: proto.Int64(time.Now().Unix()),
					},
				},
			}},
		}
		if err := h.cli.SendAppState(sendCtx, patch); err != nil {
			fail(err.Error())
			return true
		}
		emit("app_state_sent", map[string]any{"patch": c.Cmd, "collection": string(patch.Type), "ref": c.Ref})
		return true
	case "send_ephemeral_text":
		msg = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text:        proto.String(c.Text),
			ContextInfo: &waE2E.ContextInfo{Expiration: proto.Uint32(uint32(c.Seconds))},
		}}
		if c.Wrap {
			msg = &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: msg}}
		}
	case "send_link_preview":
		// text with a preview card for `target` (the URL): title = name, description =
		// options[0] when given.
		ext := &waE2E.ExtendedTextMessage{
			Text:        proto.String(c.Text),
			MatchedText: proto.String(c.Target),
			Title:       proto.String(c.Name),
		}
		if len(c.Options) > 0 {
			ext.Description = proto.String(c.Options[0])
		}
		msg = &waE2E.Message{ExtendedTextMessage: ext}
	case "send_view_once":
		data, err := base64.StdEncoding.DecodeString(c.DataB64)
		if err != nil {
			fail(err.Error())
			return true
		}
		up, err := h.cli.Upload(sendCtx, data, whatsmeow.MediaImage)
		if err != nil {
			fail("upload: " + err.Error())
			return true
		}
		img := &waE2E.ImageMessage{
			Caption:       proto.String(c.Text),
			Mimetype:      proto.String(c.Mimetype),
			URL:           proto.String(up.URL),
			DirectPath:    proto.String(up.DirectPath),
			MediaKey:      up.MediaKey,
			FileEncSHA256: up.FileEncSHA256,
			FileSHA256:    up.FileSHA256,
			FileLength:    proto.Uint64(up.FileLength),
			ViewOnce:      proto.Bool(true),
		}
		msg = &waE2E.Message{ViewOnceMessageV2: &waE2E.FutureProofMessage{
			Message: &waE2E.Message{ImageMessage: img},
		}}
	}
	resp, err := h.cli.SendMessage(sendCtx, to, msg)
	if err != nil {
		fail(err.Error())
		return true
	}
	emit("sent", map[string]any{"id": resp.ID, "to": to.String(), "serverTimestamp": resp.Timestamp.Unix(), "ref": c.Ref})
	return true
}

// contextOf returns the contextInfo of a text or media message (where the disappearing
// timer travels), else nil.
func contextOf(m *waE2E.Message) *waE2E.ContextInfo {
	switch {
	case m.GetExtendedTextMessage() != nil:
		return m.GetExtendedTextMessage().GetContextInfo()
	case m.GetImageMessage() != nil:
		return m.GetImageMessage().GetContextInfo()
	case m.GetVideoMessage() != nil:
		return m.GetVideoMessage().GetContextInfo()
	case m.GetAudioMessage() != nil:
		return m.GetAudioMessage().GetContextInfo()
	}
	return nil
}

// richMoreFields adds to a message event: whether whatsmeow unwrapped it from an
// ephemeralMessage / view-once wrapper, the contextInfo.expiration, a disappearing-timer
// setting, and an image (caption, mimetype, viewOnce flag, SHA-256 of the file whatsmeow
// downloaded and verified).
func (h *harness) richMoreFields(v *events.Message, fields map[string]any) {
	m := v.Message
	fields["isEphemeral"] = v.IsEphemeral
	fields["isViewOnce"] = v.IsViewOnce
	fields["isViewOnceV2"] = v.IsViewOnceV2
	if ci := contextOf(m); ci != nil && ci.Expiration != nil {
		fields["expiration"] = ci.GetExpiration()
	}
	if p := m.GetProtocolMessage(); p != nil && p.GetType() == waE2E.ProtocolMessage_EPHEMERAL_SETTING {
		fields["ephemeralSetting"] = map[string]any{
			"expiration": p.GetEphemeralExpiration(),
			"timestamp":  p.GetEphemeralSettingTimestamp(),
		}
	}
	if ext := m.GetExtendedTextMessage(); ext != nil && (ext.MatchedText != nil || ext.Title != nil) {
		fields["linkPreview"] = map[string]any{
			"matchedText": ext.GetMatchedText(),
			"title":       ext.GetTitle(),
			"description": ext.GetDescription(),
		}
	}
	if img := m.GetImageMessage(); img != nil {
		f := map[string]any{
			"caption":    img.GetCaption(),
			"mimetype":   img.GetMimetype(),
			"viewOnce":   img.GetViewOnce(),
			"fileSha256": hex.EncodeToString(img.GetFileSHA256()),
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		data, err := h.cli.Download(ctx, img)
		cancel()
		if err != nil {
			f["downloadError"] = err.Error()
		} else {
			sum := sha256.Sum256(data)
			f["downloadedSha256"] = hex.EncodeToString(sum[:])
		}
		fields["image"] = f
	}
}

// onEventMore reports the events of this file: a delete for me applied from app state.
func (h *harness) onEventMore(evt any) {
	if v, ok := evt.(*events.DeleteForMe); ok {
		emit("delete_for_me", map[string]any{
			"chat":             v.ChatJID.String(),
			"sender":           jidOrNil(v.SenderJID),
			"fromMe":           v.IsFromMe,
			"id":               v.MessageID,
			"deleteMedia":      v.Action.GetDeleteMedia(),
			"messageTimestamp": v.Action.GetMessageTimestamp(),
		})
	}
}
