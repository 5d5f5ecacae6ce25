# rcptguard: file flood-flagged mail into Junk (Dovecot Pigeonhole Sieve).
#
# With detection.enforce_action = "flag", rcptguard does not defer a recipient whose mail is
# flooding in (a "mail bomb": hundreds of sign-up confirmations and newsletters within minutes).
# It lets the mail in and Postfix prepends a header such as
#
#   X-Rcptguard-Flood: bob@example.test episode=2026-12-05T10:00:00Z score=2.4
#
# This is how Microsoft Defender for Office 365 handles mail bombing: the flood goes to the Junk
# folder, not to the inbox and not back to the senders. Deferring it would also defer the one
# message the flood is there to hide - the password-reset, payment or "new sign-in" notice that
# the victim must still see - and a deferred flood keeps coming back. Delivered into Junk, the
# flood stops burying the inbox, and the hidden notice is still in the mailbox to be found.
# Mail from the recipient's known correspondents (and allow-listed senders) is never flagged by
# rcptguard, so it stays in the inbox; nothing here needs to know about them.
#
# The header names the flooded recipient as rcptguard counts it: lower case, without the
# "+detail" of Postfix's recipient_delimiter. Postfix adds a header returned at the RCPT stage
# to the whole message, so every recipient of a message that also went to a flooded address gets
# it, naming that other address. The rule below therefore files the message only when the
# header's first word is this mailbox's own address (the envelope recipient Dovecot delivers
# to). Use the simpler rule at the end instead only where Dovecot is not given the envelope
# recipient (dovecot-lda without -a and without a Delivered-To header); it files every copy.
#
# Install: see README.md beside this file (sieve_before, sieve_default or per user).

require ["fileinto", "mailbox", "variables", "envelope", "subaddress"];

# The envelope recipient without its +detail, as user and domain, with any * or ? quoted so that
# an address containing them matches only itself below.
if envelope :user :matches "to" "*" {
  set :quotewildcard "rcptguard_user" "${1}";
}
if envelope :domain :matches "to" "*" {
  set :quotewildcard "rcptguard_domain" "${1}";
}

# Header values are compared without regard to case (i;ascii-casemap, the default comparator).
# A message to two flooded recipients carries two headers; any one naming this mailbox counts.
if allof (not string :is "${rcptguard_user}" "",
          header :matches "X-Rcptguard-Flood" "${rcptguard_user}@${rcptguard_domain} *") {
  fileinto :create "Junk";
  stop;
}

# The simpler rule, for a delivery without an envelope recipient: comment out the rule above and
# uncomment this one. It also files the copies of other recipients of a message that went to a
# flooded address.
#
# if exists "X-Rcptguard-Flood" {
#   fileinto :create "Junk";
#   stop;
# }
