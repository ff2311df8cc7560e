{#-
  Rows whose prices break the OHLC invariants: all prices positive, low <= open, close <= high
  (so also low <= high). Null prices are left to not_null tests.
-#}
{% test ohlc_consistent(model, open_column='open', high_column='high', low_column='low', close_column='close') %}

select *
from {{ model }}
where {{ open_column }} <= 0
   or {{ high_column }} <= 0
   or {{ low_column }} <= 0
   or {{ close_column }} <= 0
   or {{ low_column }} > {{ open_column }}
   or {{ low_column }} > {{ close_column }}
   or {{ high_column }} < {{ open_column }}
   or {{ high_column }} < {{ close_column }}

{% endtest %}
