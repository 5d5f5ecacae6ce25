// protocol_state spelling and policy_request::clear.
#include "protocol/request.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace rcptguard::protocol {
namespace {

constexpr std::array all_states{
    protocol_state::unknown, protocol_state::connect,        protocol_state::ehlo,
    protocol_state::helo,    protocol_state::mail,           protocol_state::rcpt,
    protocol_state::data,    protocol_state::end_of_message, protocol_state::vrfy,
    protocol_state::etrn,
};

TEST(ProtocolState, SpellsEveryStateAsPostfixDoes) {
  EXPECT_EQ(to_string(protocol_state::connect), "CONNECT");
  EXPECT_EQ(to_string(protocol_state::ehlo), "EHLO");
  EXPECT_EQ(to_string(protocol_state::helo), "HELO");
  EXPECT_EQ(to_string(protocol_state::mail), "MAIL");
  EXPECT_EQ(to_string(protocol_state::rcpt), "RCPT");
  EXPECT_EQ(to_string(protocol_state::data), "DATA");
  EXPECT_EQ(to_string(protocol_state::end_of_message), "END-OF-MESSAGE");
  EXPECT_EQ(to_string(protocol_state::vrfy), "VRFY");
  EXPECT_EQ(to_string(protocol_state::etrn), "ETRN");
  EXPECT_EQ(to_string(protocol_state::unknown), "UNKNOWN");
}

TEST(ProtocolState, RoundTripsEveryState) {
  for (const protocol_state state : all_states) {
    EXPECT_EQ(parse_protocol_state(to_string(state)), state) << to_string(state);
  }
}

TEST(ProtocolState, ParsesCaseInsensitively) {
  EXPECT_EQ(parse_protocol_state("rcpt"), protocol_state::rcpt);
  EXPECT_EQ(parse_protocol_state("End-Of-Message"), protocol_state::end_of_message);
  EXPECT_EQ(parse_protocol_state("eHlO"), protocol_state::ehlo);
}

TEST(ProtocolState, UnknownTextIsUnknownState) {
  for (const char* text : {"", "BDAT", "RCPT ", " RCPT", "RCPTX", "END_OF_MESSAGE", "QUIT"}) {
    EXPECT_EQ(parse_protocol_state(text), protocol_state::unknown) << '"' << text << '"';
  }
}

TEST(PolicyRequest, ClearResetsEveryFieldAndKeepsCapacity) {
  const std::string long_text(200, 'x');
  policy_request request;
  request.request = long_text;
  request.state = protocol_state::rcpt;
  request.protocol_name = long_text;
  request.helo_name = long_text;
  request.queue_id = long_text;
  request.sender = long_text;
  request.recipient = long_text;
  request.recipient_count = 3;
  request.client_address = long_text;
  request.client_name = long_text;
  request.reverse_client_name = long_text;
  request.instance = long_text;
  request.sasl_method = long_text;
  request.sasl_username = long_text;
  request.sasl_sender = long_text;
  request.size = 12345;
  request.ccert_subject = long_text;
  request.ccert_issuer = long_text;
  request.ccert_fingerprint = long_text;
  request.encryption_protocol = long_text;
  request.encryption_cipher = long_text;
  request.encryption_keysize = 256;
  request.etrn_domain = long_text;
  request.stress = true;
  request.ccert_pubkey_fingerprint = long_text;
  request.client_port = 25;
  request.policy_context = long_text;
  request.server_address = long_text;
  request.server_port = 587;
  request.compatibility_level = long_text;
  request.mail_version = long_text;
  request.tls_sni = long_text;
  request.unknown.push_back({"name", "value"});
  request.unknown.push_back({"other", "value"});

  request.clear();

  EXPECT_EQ(request, policy_request{});
  EXPECT_GE(request.recipient.capacity(), long_text.size());
  EXPECT_GE(request.tls_sni.capacity(), long_text.size());
  EXPECT_GE(request.unknown.capacity(), 2U);
}

}  // namespace
}  // namespace rcptguard::protocol
