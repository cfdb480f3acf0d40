package chat

import "strings"

// Family names a chat format, recognized from a template's markers.
type Family string

// The families Detect knows.
const (
	FamilyChatML  Family = "chatml"  // Qwen, SmolLM, the fallback: <|im_start|>role … <|im_end|>
	FamilyLlama3  Family = "llama3"  // <|start_header_id|>role<|end_header_id|> … <|eot_id|>
	FamilyGemma   Family = "gemma"   // <start_of_turn>role … <end_of_turn>
	FamilyPhi3    Family = "phi3"    // <|user|> … <|end|>
	FamilyZephyr  Family = "zephyr"  // TinyLlama/Zephyr: <|user|> … </s>
	FamilyMistral Family = "mistral" // Llama 2/Mistral: [INST] … [/INST] … </s>
	FamilyUnknown Family = ""
)

// Detect recognizes the chat format of a template from its markers.
func Detect(template string) Family {
	has := func(s string) bool { return strings.Contains(template, s) }
	switch {
	case has("<|im_start|>"):
		return FamilyChatML
	case has("<|start_header_id|>"):
		return FamilyLlama3
	case has("<start_of_turn>"):
		return FamilyGemma
	case has("<|end|>") && has("<|user|>"):
		return FamilyPhi3
	case has("<|user|>"):
		return FamilyZephyr
	case has("[INST]"):
		return FamilyMistral
	}
	return FamilyUnknown
}

// StopStrings are the texts that end an assistant turn in the family's
// format: its end-of-turn marker and the start of a next turn. They matter
// when the model writes the marker as text (a vocabulary whose marker is not
// a special token, or a model that runs on into a new turn); the tokens
// themselves also end generation through the vocabulary's end-of-generation
// ids.
func StopStrings(f Family) []string {
	switch f {
	case FamilyChatML:
		return []string{"<|im_end|>", "<|im_start|>", "<|endoftext|>"}
	case FamilyLlama3:
		return []string{"<|eot_id|>", "<|eom_id|>", "<|start_header_id|>", "<|end_of_text|>"}
	case FamilyGemma:
		return []string{"<end_of_turn>", "<start_of_turn>"}
	case FamilyPhi3:
		return []string{"<|end|>", "<|user|>", "<|endoftext|>"}
	case FamilyZephyr:
		return []string{"</s>", "<|user|>"}
	case FamilyMistral:
		return []string{"</s>", "[INST]"}
	}
	return nil
}

// EndOfTurnTokens are the token texts that end a turn in the family's
// format; a server maps them to ids with the vocabulary (those that exist)
// and adds them to the end-of-generation set.
func EndOfTurnTokens(f Family) []string {
	switch f {
	case FamilyChatML:
		return []string{"<|im_end|>", "<|endoftext|>"}
	case FamilyLlama3:
		return []string{"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"}
	case FamilyGemma:
		return []string{"<end_of_turn>", "<eos>"}
	case FamilyPhi3:
		return []string{"<|end|>", "<|endoftext|>"}
	case FamilyZephyr, FamilyMistral:
		return []string{"</s>"}
	}
	return nil
}
