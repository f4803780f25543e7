// Package llm is a domain expert backed by a large language model behind
// any OpenAI-compatible chat-completions endpoint (OpenAI, Azure, vLLM,
// Ollama, llama.cpp …), spoken to with the official openai-go client. It
// streams the answer to the conversation's live subscribers as it is
// written, and puts the recent conversation and the workspace memory into
// the prompt.
package llm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/engramhq/engram/cognition"
)

// History reads a conversation's recent messages.
type History interface {
	// Recent returns up to limit of the latest messages posted before the
	// message beforeID, oldest first.
	Recent(ctx context.Context, conversationID, beforeID string, limit int) ([]cognition.Turn, error)
}

// Config configures the expert.
type Config struct {
	// BaseURL is the endpoint's base, e.g. https://api.openai.com/v1 or
	// http://127.0.0.1:11434/v1.
	BaseURL string
	// Model is the model to ask.
	Model string
	// APIKey is sent as a bearer token; empty sends none.
	APIKey string
	// HTTPClient, when set, makes the requests.
	HTTPClient *http.Client
	// HistoryLimit is how many recent messages go into the prompt
	// (default 20).
	HistoryLimit int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Expert is the llm expert.
type Expert struct {
	client  openai.Client
	model   string
	history History
	memory  cognition.Memory
	limit   int
	now     func() time.Time
}

var _ cognition.Expert = (*Expert)(nil)

// New returns the llm expert. It refuses a configuration without a base
// URL or a model, and missing history or memory.
func New(cfg Config, history History, memory cognition.Memory) (*Expert, error) {
	if cfg.BaseURL == "" || cfg.Model == "" {
		return nil, errors.New("llm: base URL and model are required")
	}
	if history == nil || memory == nil {
		return nil, errors.New("llm: history and memory are required")
	}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithAPIKey(cfg.APIKey),
		// Retries are the worker's, with backoff and a record of each attempt.
		option.WithMaxRetries(0),
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.HistoryLimit <= 0 {
		cfg.HistoryLimit = 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Expert{client: openai.NewClient(opts...), model: cfg.Model, history: history, memory: memory,
		limit: cfg.HistoryLimit, now: cfg.Now}, nil
}

// Name returns "llm".
func (*Expert) Name() string { return "llm" }

// Capabilities returns ["respond", "chat", "stream"].
func (*Expert) Capabilities() []string { return []string{"respond", "chat", "stream"} }

// Handle asks the model, streaming each piece of the answer as a delta
// signal, and returns the whole answer. Errors the endpoint will answer the
// same way again (a bad request, a refused key, an unknown model) are
// permanent; others (overload, network) are retried by the worker.
func (e *Expert) Handle(ctx context.Context, t cognition.Task, p cognition.Progress) (cognition.Result, error) {
	messages, err := e.prompt(ctx, t)
	if err != nil {
		return cognition.Result{}, err
	}
	stream := e.client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:    e.model,
		Messages: messages,
	})
	defer stream.Close()
	var answer strings.Builder
	for stream.Next() {
		chunk := stream.Current()
		if len(chunk.Choices) == 0 {
			continue
		}
		if delta := chunk.Choices[0].Delta.Content; delta != "" {
			answer.WriteString(delta)
			p.Delta(ctx, delta)
		}
	}
	if err := stream.Err(); err != nil {
		return cognition.Result{}, classify(ctx, err)
	}
	return cognition.Result{Output: answer.String()}, nil
}

// classify turns a client error into the expert's error.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		e := fmt.Errorf("llm: the endpoint answered %d %s", apiErr.StatusCode, http.StatusText(apiErr.StatusCode))
		switch apiErr.StatusCode {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity:
			return cognition.Permanent(e)
		}
		return e
	}
	return fmt.Errorf("llm: %w", err)
}

// prompt is the system prompt with the workspace memory, the recent
// conversation, and the task's input last.
func (e *Expert) prompt(ctx context.Context, t cognition.Task) ([]openai.ChatCompletionMessageParamUnion, error) {
	now := e.now()
	turns, err := e.history.Recent(ctx, t.ConversationID, t.MessageID, e.limit)
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	memory, err := cognition.BuildContext(ctx, e.memory, t.WorkspaceID, now)
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	relevant, err := e.memory.Search(ctx, t.WorkspaceID, cognition.Query{Words: cognition.SearchText(t.Input), AnyWord: true, Limit: 5, Now: now})
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	messages := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(systemPrompt(memory, relevant, t.MessageID))}
	for _, turn := range turns {
		switch turn.Role {
		case "user":
			messages = append(messages, openai.UserMessage(turn.Content))
		case "assistant":
			messages = append(messages, openai.AssistantMessage(turn.Content))
		}
	}
	return append(messages, openai.UserMessage(t.Input)), nil
}

// systemPrompt tells the model who it is and what the workspace remembers.
func systemPrompt(memory cognition.Context, relevant []cognition.Item, messageID string) string {
	var b strings.Builder
	b.WriteString("You are Engram's assistant in a shared workspace. Answer the last message of the conversation, ")
	b.WriteString("briefly and helpfully. Use what the workspace remembers when it is relevant.\n\n")
	b.WriteString("Workspace memory: " + memory.Summary)
	if len(memory.Entities) > 0 {
		b.WriteString("\nEntities:")
		for _, name := range sortedNames(memory.Entities) {
			fmt.Fprintf(&b, "\n- %s", cognition.Describe(memory.Entities[name], 200))
		}
	}
	first := true
	for _, it := range relevant {
		if it.SourceMessageID == messageID {
			continue
		}
		if first {
			b.WriteString("\nRelated notes:")
			first = false
		}
		fmt.Fprintf(&b, "\n- (%s) %s", it.Type, cognition.Describe(it, 300))
	}
	return b.String()
}

func sortedNames(entities map[string]cognition.Item) []string {
	return slices.Sorted(maps.Keys(entities))
}
