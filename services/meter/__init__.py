"""The usage meter: Twilio status callbacks and Kong http-log entries -> local spool -> regional warehouse."""
