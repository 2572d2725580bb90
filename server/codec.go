package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"
)

// PayloadCodec encrypts and decrypts Temporal payloads with the keys the workers
// use.
type PayloadCodec interface {
	Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error)
	Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error)
}

// codecRoute serves Temporal's remote codec protocol, so `temporal workflow show
// --codec-endpoint …/api/v1/codec` can read the histories Rampart encrypts.
const codecRoute = "/api/v1/codec/:op"

// maxCodecBody bounds a codec request: a history page of payloads, each at most
// an alert's 1 MiB and its encryption.
const maxCodecBody = 16 << 20

// codec serves POST /api/v1/codec/decode and /encode: a JSON Payloads message in,
// the same out. It stands behind the API's access rules like every other route:
// decrypting a payload reveals what the alert API shows.
func (s *Server) codec(c echo.Context) error {
	if s.opts.Codec == nil {
		return apiError(http.StatusNotFound, "not_found", "this server has no payload keys")
	}
	var transform func([]*commonpb.Payload) ([]*commonpb.Payload, error)
	switch c.Param("op") {
	case "decode":
		transform = s.opts.Codec.Decode
	case "encode":
		transform = s.opts.Codec.Encode
	default:
		return apiError(http.StatusNotFound, "not_found", "use POST /api/v1/codec/decode or /encode")
	}
	if err := requireJSON(c); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxCodecBody))
	if err != nil {
		return apiError(http.StatusRequestEntityTooLarge, "body_too_large", "a codec request is at most 16 MiB")
	}
	var in commonpb.Payloads
	if err := protojson.Unmarshal(body, &in); err != nil {
		return apiError(http.StatusBadRequest, "invalid_body", "the body is not a Temporal Payloads message in JSON: "+err.Error())
	}
	out, err := transform(in.GetPayloads())
	var refused *temporal.ApplicationError
	switch {
	case errors.As(err, &refused): // its message, not the SDK's "(type: …, retryable: …)"
		return apiError(http.StatusBadRequest, "codec_failed", refused.Message())
	case err != nil:
		return apiError(http.StatusBadRequest, "codec_failed", err.Error())
	}
	answer, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, answer)
}
