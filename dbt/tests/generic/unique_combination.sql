{#- Combinations of the given columns that occur more than once (e.g. one row per symbol and bar time). -#}
{% test unique_combination(model, combination_of_columns) %}

{%- set columns = combination_of_columns | join(', ') %}

select {{ columns }}, count(*) as occurrences
from {{ model }}
group by {{ columns }}
having count(*) > 1

{% endtest %}
