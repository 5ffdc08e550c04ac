//! SVG charts of the report's tables, drawn with plotters: one line per allocator across the table's
//! rows (sizes or variants), with a marker per point so single-row tables still show.

use std::path::Path;

use plotters::prelude::*;

use super::table::Table;

/// How a chart turns a table's values into its y axis.
#[derive(Clone, Copy, Debug)]
pub enum Axis {
    /// The table's own values on a logarithmic axis.
    LogValue,
    /// Nanoseconds per operation shown as millions of operations per second (1000 / ns).
    ThroughputFromNanos,
    /// The table's own values on a linear axis from zero.
    LinearValue,
}

/// Draws `table` into `path` as an SVG line chart.
pub fn draw(table: &Table, axis: Axis, y_label: &str, path: &Path) -> Result<(), String> {
    let convert = |value: f64| match axis {
        Axis::ThroughputFromNanos => 1000.0 / value,
        Axis::LogValue | Axis::LinearValue => value,
    };
    let references = table.references.iter().map(|(name, values)| {
        let points = table
            .rows
            .iter()
            .enumerate()
            .filter_map(|(x, row)| Some((x as i32, values.get(row)?.parse::<f64>().ok()?)))
            .collect();
        (name.clone(), points)
    });
    let series: Vec<(String, Vec<(i32, f64)>)> = table
        .columns
        .iter()
        .map(|column| {
            let points = table
                .rows
                .iter()
                .enumerate()
                .filter_map(|(x, row)| table.median(row, column).map(|v| (x as i32, convert(v))))
                .filter(|(_, y)| y.is_finite() && *y > 0.0)
                .collect();
            (column.clone(), points)
        })
        .chain(references)
        .collect();
    let values = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1));
    let (low, high) = values.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if low > high {
        return Ok(()); // Nothing measured: no chart.
    }
    let rows = table.rows.clone();
    let x_range = -1i32..rows.len() as i32;
    let label = move |x: &i32| {
        usize::try_from(*x)
            .ok()
            .and_then(|i| rows.get(i).cloned())
            .unwrap_or_default()
    };
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&table.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    match axis {
        Axis::LogValue => {
            let mut chart = builder
                .build_cartesian_2d(x_range, (low / 1.2..high * 1.2).log_scale())
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(table.rows.len() + 2)
                .x_label_formatter(&label)
                .y_desc(y_label)
                .draw()
                .map_err(|e| e.to_string())?;
            draw_series(&mut chart, &series)?;
            legend(&mut chart)?;
        }
        Axis::ThroughputFromNanos | Axis::LinearValue => {
            let mut chart = builder
                .build_cartesian_2d(x_range, 0.0..high * 1.15)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(table.rows.len() + 2)
                .x_label_formatter(&label)
                .y_desc(y_label)
                .draw()
                .map_err(|e| e.to_string())?;
            draw_series(&mut chart, &series)?;
            legend(&mut chart)?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

fn draw_series<'a, Y>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordi32, Y>,
    >,
    series: &[(String, Vec<(i32, f64)>)],
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64>,
{
    for (index, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 3, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn legend<'a, Y>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordi32, Y>,
    >,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}
