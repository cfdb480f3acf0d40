package server

import (
	"fmt"
	"net/http"
	"strings"
)

// chatMessage is one turn of a conversation, whatever the dialect.
type chatMessage struct {
	Role    string
	Content string
}

// chatRoles are the roles accepted from clients.
var chatRoles = map[string]string{
	"system":    "System",
	"developer": "System", // OpenAI's newer name for the system role
	"user":      "User",
	"assistant": "Assistant",
	"tool":      "Tool",
	"function":  "Tool",
}

// renderChat turns messages into a prompt.
//
// Chat templates (Jinja from the GGUF file) are not implemented yet; until
// they are, every model gets this fallback format, one turn per line group:
//
//	System: {content}
//
//	User: {content}
//
//	Assistant: {content}
//
//	Assistant:
//
// ending with the assistant cue. chatStops are added to the request's stop
// strings so that the model's answer ends where it would start the user's
// next turn.
func renderChat(msgs []chatMessage) (string, error) {
	if len(msgs) == 0 {
		return "", &apiError{Status: http.StatusBadRequest, Param: "messages", Message: "\"messages\" is empty: at least one message is needed"}
	}
	var b strings.Builder
	for i, m := range msgs {
		label, ok := chatRoles[m.Role]
		if !ok {
			return "", &apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("messages[%d].role", i),
				Message: fmt.Sprintf("invalid role %q in messages[%d]: want system, developer, user, assistant or tool", m.Role, i)}
		}
		b.WriteString(label)
		b.WriteString(": ")
		b.WriteString(strings.TrimSpace(m.Content))
		b.WriteString("\n\n")
	}
	b.WriteString("Assistant:")
	return b.String(), nil
}

// chatStops end an answer in the fallback chat format.
var chatStops = []string{"\nUser:", "\nSystem:"}
