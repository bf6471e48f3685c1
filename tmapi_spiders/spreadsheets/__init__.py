"""Spreadsheets: product sheets in, prices in your currency, the sourcing workbook out."""
