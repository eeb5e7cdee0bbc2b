package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// ReportAttempts is one node's attempt reports of a short interval (the
// runner's starts and ends, node/reports), applied in order as one
// command: attempt.started and attempt.ended as they would be one by one,
// each with its own outcome. A report that fails (its attempt unknown, a
// malformed report) leaves no write and does not stop the others.
type ReportAttempts struct {
	Reports []AttemptReport `json:"reports"`
}

// AttemptReport is one report: exactly one of Started and Ended.
type AttemptReport struct {
	Started *AttemptStarted `json:"started,omitempty"`
	Ended   *AttemptEnded   `json:"ended,omitempty"`
}

// ReportOutcome is what became of one report: recorded (no code), or
// refused with the code and message of the error its command would have
// returned.
type ReportOutcome struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Err is the outcome as an error (an *Error with its code), nil when the
// report was recorded.
func (o ReportOutcome) Err() error {
	if o.Code == "" {
		return nil
	}
	return &Error{Code: o.Code, Message: o.Message}
}

// MaxAttemptReports bounds the reports of one attempt.report command.
const MaxAttemptReports = 4096

func (a *applier) reportAttempts(c *ReportAttempts) ([]ReportOutcome, error) {
	if len(c.Reports) > MaxAttemptReports {
		return nil, Errorf(EInvalid, "reports: at most %d in one command", MaxAttemptReports)
	}
	out := make([]ReportOutcome, len(c.Reports))
	for i, r := range c.Reports {
		var err error
		a.written = nil // as between commands (applyCommand)
		switch {
		case (r.Started == nil) == (r.Ended == nil):
			err = Errorf(EInvalid, "report %d: want one of started and ended", i)
		case r.Started != nil:
			_, err = a.attemptStarted(r.Started)
		default:
			_, err = a.attemptEnded(r.Ended)
		}
		if errors.Is(err, badger.ErrTxnTooBig) {
			return nil, err
		}
		if err != nil {
			// An internal error keeps its detail: outcomes go only to the
			// reporting node's log, never to users.
			out[i] = ReportOutcome{Code: ErrorCode(err), Message: err.Error()}
		}
	}
	return out, nil
}
