package main

// Poll tallies (issue 13, three-way poll): whatsmeow decrypts each vote with its own
// DecryptPollVote (msgsecret.go) but keeps no tally, as apps do; this file keeps the latest
// decrypted vote per voter and counts them per option name.

import (
	"bytes"
	"sort"
	"sync"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

var (
	pollVotesMu sync.Mutex
	// poll id -> voter (non-AD JID) -> selected option hashes of the voter's latest vote.
	pollVotes = map[string]map[string][][]byte{}
)

// recordPollVote keeps a voter's latest vote on a poll (an empty selection withdraws it).
func recordPollVote(pollID string, voter types.JID, hashes [][]byte) {
	pollVotesMu.Lock()
	defer pollVotesMu.Unlock()
	if pollVotes[pollID] == nil {
		pollVotes[pollID] = map[string][][]byte{}
	}
	pollVotes[pollID][voter.ToNonAD().String()] = hashes
}

// pollTally emits poll_tally: for each option name (c.Options, in order) the voters whose
// latest vote selects it (whatsmeow.HashPollOptions), sorted by JID.
func (h *harness) pollTally(c command) {
	pollVotesMu.Lock()
	defer pollVotesMu.Unlock()
	hashes := whatsmeow.HashPollOptions(c.Options)
	tally := []map[string]any{}
	for i, name := range c.Options {
		voters := []string{}
		for voter, selected := range pollVotes[c.Target] {
			for _, s := range selected {
				if bytes.Equal(s, hashes[i]) {
					voters = append(voters, voter)
					break
				}
			}
		}
		sort.Strings(voters)
		tally = append(tally, map[string]any{"name": name, "voters": voters})
	}
	emit("poll_tally", map[string]any{"pollId": c.Target, "tally": tally, "ref": c.Ref})
}
