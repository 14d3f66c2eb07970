"""Values that tests give the models they create."""

# Message content for both channels, so that a campaign can be dispatched
# whatever its recipients have (Campaign.missing_content).
MESSAGE_CONTENT = {
    "email_subject": "News for {{ first_name|default:'you' }}",
    "email_text": "Hello {{ name|default:'there' }},\n\nHere is our news.",
    "sms_text": "Hello {{ first_name|default:'there' }}, here is our news.",
}
