"""aiosmtpd handler that refuses every recipient permanently (550), for the mail tests."""


class Reject:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 <%s>: mailbox unavailable" % address
