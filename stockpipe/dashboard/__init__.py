"""Reporting on gold: the Streamlit dashboard, the self-contained HTML report, BI export."""
