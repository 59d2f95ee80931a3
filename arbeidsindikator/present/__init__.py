"""What people read: the Norwegian figures and HTML shell shared by every report, the
indicator's reports and page, the reports of the analyses, and the dashboard. Imports every
layer below; nothing below imports it."""
